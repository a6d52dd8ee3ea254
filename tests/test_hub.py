"""The hub's fan-out: every local subscription, whatever their number, gets each event once."""

from __future__ import annotations

from events.event import parse_client_event
from events.filters import Filters, parse_filters
from events.realtime.hub import DISPATCH_SLICE, get_hub
from events.realtime.publishing import publish
from events.realtime.subscription import QueuedSubscription
from kernel.caller import Caller
from kernel.context import RequestContext

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


class _Broken(QueuedSubscription):
    def accept(self, deliveries):
        raise RuntimeError("this consumer is broken")


async def test_one_failing_subscription_is_cut_off_and_the_others_go_on(broker, caplog):
    hub = get_hub()
    broken = _Broken(CALLER, Filters(), last_id="", outbox_max=10)
    cut_off = []
    broken.on_overflow = lambda: cut_off.append(True)
    healthy = QueuedSubscription(CALLER, Filters(), last_id="", outbox_max=10)
    for subscription in (broken, healthy):
        await hub.join("acme", subscription)
    for _ in range(2):  # the feed still reads and dispatches after the failure
        [sent] = await publish(
            "acme", [parse_client_event({"type": "t"})], caller=CALLER, context=CONTEXT
        )
        assert await healthy.wait(5)
        assert [e["id"] for e, _ in healthy.take()] == [sent["id"]]
    assert cut_off == [True]
    assert "cutting it off" in caplog.text
    for subscription in (broken, healthy):
        await hub.leave("acme", subscription)
