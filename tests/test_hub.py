"""The hub's fan-out: every local subscription, whatever their number, gets each event once."""

from __future__ import annotations

from events.context import RequestContext
from events.event import parse_client_event
from events.filters import Filters, parse_filters
from events.hub import DISPATCH_SLICE, get_hub
from events.publishing import publish
from events.subscription import QueuedSubscription
from workspaces.caller import Caller

CALLER = Caller.for_api_key("acme", "tests", frozenset({"consume"}))
CONTEXT = RequestContext(correlation_id="hub-test", transport="http", ip=None)


async def test_a_fan_out_in_several_slices_reaches_everyone_once_in_order(broker):
    hub = get_hub()
    count = DISPATCH_SLICE * 2 + 5
    subscriptions = [
        QueuedSubscription(
            CALLER,
            parse_filters({"types": "even"}) if n % 2 else Filters(),
            last_id="",
            outbox_max=10,
        )
        for n in range(count)
    ]
    for subscription in subscriptions:
        await hub.join("acme", subscription)
    events = [parse_client_event({"type": t}) for t in ("odd", "even", "odd")]
    sent = await publish("acme", events, caller=CALLER, context=CONTEXT)
    for n, subscription in enumerate(subscriptions):
        assert await subscription.wait(5)
        wanted = [e["id"] for e in sent if not n % 2 or e["type"] == "even"]
        taken = [e["id"] for e, _ in subscription.take()]
        while len(taken) < len(wanted) and await subscription.wait(1):
            taken += [e["id"] for e, _ in subscription.take()]
        assert taken == wanted, n
    for subscription in subscriptions:
        await hub.leave("acme", subscription)
