"""Subscriptions: exactly once, in order, only what the consumer may read, bounded."""

from __future__ import annotations

import pytest

from events.filters import Filters, parse_filters
from events.realtime.subscription import QueuedSubscription, SlowConsumer
from kernel.caller import Caller
from kernel.ids import format_id

READER = Caller.for_user("acme", "u-1", "viewer", session_id="s-1")


def event(n: int, event_type: str = "tick", **extra) -> dict:
    return {"id": format_id(1_764_302_400_000 + n, 0), "type": event_type, **extra}


def offer_all(subscription: QueuedSubscription, events: list[dict]) -> None:
    for item in events:
        subscription.offer(item, "frame")


def test_it_takes_each_event_once_in_order():
    subscription = QueuedSubscription(READER, Filters(), last_id="", outbox_max=10)
    events = [event(n) for n in range(3)]
    offer_all(subscription, events + events[:2])
    assert [e for e, _ in subscription.take()] == events
    assert subscription.take() == []


def test_it_skips_events_at_or_before_its_position():
    subscription = QueuedSubscription(READER, Filters(), last_id=event(1)["id"], outbox_max=10)
    offer_all(subscription, [event(0), event(1), event(2)])
    assert [e["id"] for e, _ in subscription.take()] == [event(2)["id"]]


@pytest.mark.parametrize(
    ("target", "readable"),
    [
        ({"userId": "u-1"}, True),
        ({"sessionId": "s-1"}, True),
        ({"userId": "u-2"}, False),
        ({"sessionId": "s-2"}, False),
    ],
)
def test_a_targeted_event_reaches_only_its_target(target, readable):
    subscription = QueuedSubscription(READER, Filters(), last_id="", outbox_max=10)
    assert subscription.offer(event(0, target=target), "frame") is readable


def test_owners_and_api_keys_read_targeted_events_of_others():
    targeted = event(0, target={"userId": "u-2"})
    owner = Caller.for_user("acme", "u-9", "owner")
    key = Caller.for_api_key("acme", "svc", frozenset({"consume"}))
    for caller in (owner, key):
        assert QueuedSubscription(caller, Filters(), last_id="", outbox_max=1).offer(targeted, "f")


def test_a_consumer_that_lets_its_outbox_fill_is_cut_off():
    subscription = QueuedSubscription(READER, Filters(), last_id="", outbox_max=3)
    offer_all(subscription, [event(n) for n in range(4)])
    assert subscription.outbox == type(subscription.outbox)()
    with pytest.raises(SlowConsumer):
        subscription.take()


def test_new_filters_drop_queued_events_that_no_longer_match():
    subscription = QueuedSubscription(READER, Filters(), last_id="", outbox_max=10)
    offer_all(subscription, [event(0, "a"), event(1, "b")])
    subscription.change_filters(parse_filters({"types": "b"}))
    assert [e["type"] for e, _ in subscription.take()] == ["b"]
    assert not subscription.offer(event(2, "a"), "frame")


async def test_waiting_ends_when_an_event_is_queued_or_at_the_timeout():
    subscription = QueuedSubscription(READER, Filters(), last_id="", outbox_max=10)
    assert await subscription.wait(0.01) is False
    subscription.offer(event(0), "frame")
    assert await subscription.wait(0.01) is True
