"""Races in the hub, each driven step by step with controlled batches and asyncio events.

A feed offers a batch to its subscriptions ``DISPATCH_SLICE`` at a time, in the order
they joined, and lets the event loop run between slices: whatever runs there (a long
poll ending, a replay finishing, a join failing) must not lose or leak anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from django.test import override_settings

import events.broker
from events.broker.memory import MemoryArchiveQueue, MemoryLiveStream
from events.event import parse_client_event
from events.filters import Filters
from events.positions import Position, parse_position
from events.realtime.hub import DISPATCH_SLICE, get_hub
from events.realtime.longpoll import poll
from events.realtime.publishing import publish
from events.realtime.subscription import QueuedSubscription
from kernel.errors import CursorExpired
from kernel.ids import ZERO_ID
from tests.test_hub import CALLER, CONTEXT


class _Nudging(QueuedSubscription):
    """Calls ``nudge`` (once armed) when the feed offers it a batch."""

    nudge = None

    def accept(self, deliveries):
        super().accept(deliveries)
        if self.nudge is not None:
            nudge, self.nudge = self.nudge, None
            nudge()


# Slices offered before the subscription under test: the turns of the event loop a
# woken task needs to run (a task waking another takes a few) all come before its own.
FIRST = DISPATCH_SLICE * 8


async def _first_slices(hub) -> list[_Nudging]:
    """Subscriptions joined before anything else: the first slices of every batch."""
    fillers = [_Nudging(CALLER, Filters(), last_id="", outbox_max=1000) for _ in range(FIRST)]
    for filler in fillers:
        await hub.join("acme", filler)
    return fillers


async def _until(condition) -> None:
    """Let the event loop run until ``condition()`` holds (turns of the loop, no timer)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def _emit(event_type: str = "tick") -> list[dict]:
    return await publish(
        "acme", [parse_client_event({"type": event_type})], caller=CALLER, context=CONTEXT
    )


async def test_a_long_poll_that_ends_while_a_batch_is_dispatched_answers_a_cursor_before_it(broker):
    hub = get_hub()
    fillers = await _first_slices(hub)
    waiting = asyncio.create_task(
        poll("acme", caller=CALLER, filters=Filters(), cursor=None, timeout_secs=60)
    )
    feed = hub.feeds["acme"]
    await _until(lambda: len(feed.subscriptions) == FIRST + 1)
    [polling] = list(feed.subscriptions)[FIRST:]
    # The first slice wakes the poll with nothing for it yet: what a timeout does then.
    fillers[0].nudge = polling._ready.set
    [sent] = await _emit()
    ended = await waiting
    assert ended.events == []
    resumed = await poll(
        "acme",
        caller=CALLER,
        filters=Filters(),
        cursor=parse_position(ended.cursor),
        timeout_secs=5,
    )
    assert [e["id"] for e in resumed.events] == [sent["id"]]
    for filler in fillers:
        await hub.leave("acme", filler)


class _Gated(MemoryLiveStream):
    """The embedded live stream; while its gate is shut, the answer of a replay read (not
    a blocking one) waits at the gate, as a Redis reply still on its way would."""

    def __init__(self) -> None:
        super().__init__(buffer_size=50, archive=MemoryArchiveQueue(max_backlog=10_000))
        self.gate = asyncio.Event()
        self.gate.set()
        self.paused = asyncio.Event()

    def shut(self) -> None:
        self.gate.clear()

    async def read_after(self, workspace_id, after_id, *, count, block_ms=None):
        page = await super().read_after(workspace_id, after_id, count=count, block_ms=block_ms)
        if not block_ms and not self.gate.is_set():
            self.paused.set()
            await self.gate.wait()
        return page


@pytest.fixture
def gated(monkeypatch) -> Iterator[_Gated]:
    """The embedded broker, with a gate on replays."""
    with override_settings(REDIS_URL=""):
        stream = _Gated()
        monkeypatch.setattr(events.broker, "_memory", events.broker.Backend(stream, stream.archive))
        yield stream


async def _taken_until(subscription: QueuedSubscription, last_id: str) -> list[str]:
    taken: list[str] = []
    while last_id not in taken:
        assert await subscription.wait(5)
        taken += [e["id"] for e, _ in subscription.take()]
    return taken


async def test_a_subscription_moving_from_replay_to_live_misses_no_batch(gated):
    hub = get_hub()
    fillers = await _first_slices(hub)
    [first] = await _emit()
    await _until(lambda: bool(fillers[-1].outbox))
    resuming = QueuedSubscription(CALLER, Filters(), last_id="", outbox_max=1000)
    gated.shut()
    joining = asyncio.create_task(hub.join("acme", resuming, Position(ZERO_ID)))
    await gated.paused.wait()  # replaying, held by the feed behind every first slice
    fillers[0].nudge = gated.gate.set  # the replay ends while the next batch goes out
    [second] = await _emit()
    await joining
    [third] = await _emit()
    assert await _taken_until(resuming, third["id"]) == [first["id"], second["id"], third["id"]]


async def test_a_cancelled_long_poll_join_leaves_no_subscription_behind(gated):
    await _emit()
    gated.shut()
    polling = asyncio.create_task(
        poll("acme", caller=CALLER, filters=Filters(), cursor=Position(ZERO_ID), timeout_secs=60)
    )
    await gated.paused.wait()  # the client went away during the replay
    polling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await polling
    assert not get_hub().feeds["acme"].subscriptions


async def test_a_long_poll_join_that_fails_leaves_no_subscription_behind(gated, monkeypatch):
    monkeypatch.setattr("events.realtime.hub.READ_COUNT", 1)  # a replay of two reads
    await _emit()
    await _emit()
    gated.shut()
    polling = asyncio.create_task(
        poll("acme", caller=CALLER, filters=Filters(), cursor=Position(ZERO_ID), timeout_secs=60)
    )
    await gated.paused.wait()
    burst = [parse_client_event({"type": "tick"})] * (gated.buffer_size + 10)
    await publish("acme", burst, caller=CALLER, context=CONTEXT)  # trimmed past the replay
    gated.gate.set()
    with pytest.raises(CursorExpired):
        await polling
    assert not get_hub().feeds["acme"].subscriptions
