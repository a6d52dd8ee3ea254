"""Long polling: wait until at least one matching event follows a cursor.

A poll is a short-lived subscription of the hub: it replays what follows the
cursor, then waits for live events until the timeout. The cursor it answers
with is the position it reached, so the next poll neither repeats nor misses.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.broker.stream import BrokerUnavailable
from events.event import Envelope
from events.filters import Filters
from events.metrics import DELIVERED, LONGPOLL_WAITING
from events.positions import Position
from events.realtime.hub import get_hub
from events.realtime.subscription import QueuedSubscription
from kernel import outages
from kernel.caller import Caller

MAX_EVENTS_PER_POLL = 500


@dataclass(frozen=True)
class PollResult:
    events: list[Envelope]
    cursor: str


async def poll(
    workspace_id: str,
    *,
    caller: Caller,
    filters: Filters,
    cursor: Position | None,
    timeout_secs: float,
) -> PollResult:
    """Answer as soon as a matching event after ``cursor`` exists, or at the timeout.

    The answer's cursor is ``<epoch>:<id>``; CursorExpired (410) when ``cursor`` is
    outside the live buffer, or the stream is reset or trimmed past it while waiting.
    """
    hub = get_hub()
    subscription = _PollSubscription(
        caller, filters, last_id=cursor.event_id if cursor else "", outbox_max=MAX_EVENTS_PER_POLL
    )
    await hub.join(workspace_id, subscription, cursor)
    LONGPOLL_WAITING.inc()
    try:
        await subscription.wait(timeout_secs)
        events = [envelope for envelope, _ in subscription.take()]
        feed = hub.feeds.get(workspace_id)
        position = subscription.last_id
        if not events and feed is not None:
            # Not ``feed.position``: a batch read but still going out in slices may not
            # have reached this poll yet; its cursor must not pass it.
            position = max(position, feed.dispatched)
        if not events and outages.is_down(outages.BROKER):
            # The feed could not read: "no events" would be a lie; the client retries.
            raise BrokerUnavailable()
    finally:
        LONGPOLL_WAITING.dec()
        await hub.leave(workspace_id, subscription)
    DELIVERED.labels(transport="longpoll").inc(len(events))
    return PollResult(events, str(Position(position, subscription.epoch)))


class _PollSubscription(QueuedSubscription):
    """A poll stops taking events when full, so its cursor marks what it holds."""

    def room(self) -> int:
        return self.outbox_max - len(self.outbox)
