"""The live stream port: a durable, bounded, ordered stream of events per workspace.

Its users deliver events as they happen: publishing appends to it
(:mod:`events.realtime.publishing`, the own-events outbox), the hub's feeds
read it after their position and wait there for what comes next, and a resume
(``lastEventId``, a long poll cursor) is checked against its epoch and bounds
first (:mod:`events.positions`). Those users never archive: the work queue the
archiver takes events from is another port (:mod:`events.broker.archive_queue`),
over the same streams.

Two implementations: :class:`events.broker.memory.MemoryLiveStream` (one process,
the embedded default) and :class:`events.broker.redis.RedisLiveStream`
(``REDIS_URL``: Redis streams, shared by every service process and by other
platform services). Events are stored as JSON without ``id`` and ``size`` (see
:mod:`events.event`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from events.event import Envelope
from events.positions import RESET_MESSAGE, Position
from kernel import outages
from kernel.errors import CursorExpired, DependencyDown
from kernel.ids import ZERO_ID

AHEAD_MESSAGE = "The cursor is ahead of this workspace's stream; catch up through search"
BEFORE_MESSAGE = (
    "The cursor is older than this workspace's stream (it was reset); catch up through search"
)


class BrokerUnavailable(DependencyDown):
    """The broker does not answer (what a feed that cannot read tells a long poll)."""

    dependency = outages.BROKER


@dataclass(frozen=True)
class Page:
    """Events read after a position, and the position to read from next."""

    events: list[Envelope]
    last_id: str
    epoch: str = ""


@dataclass(frozen=True)
class StreamState:
    """What a resume is checked against: the stream's epoch and the ids it holds.

    ``floor`` is the oldest position a resume loses nothing from (``ZERO_ID``
    while the stream never dropped an event); ``first_id`` is its oldest event
    (None when empty).
    """

    epoch: str
    floor: str
    first_id: str | None
    last_id: str

    def check(self, position: Position) -> None:
        """Raise CursorExpired if a resume from ``position`` could miss or invent events."""
        after_id = position.event_id
        if position.epoch is not None and position.epoch != self.epoch:
            raise CursorExpired(RESET_MESSAGE)
        if after_id > self.last_id:
            raise CursorExpired(AHEAD_MESSAGE)
        if after_id < self.floor:
            raise CursorExpired()
        if position.epoch is None and self._before_this_stream(after_id):
            raise CursorExpired(BEFORE_MESSAGE)

    def _before_this_stream(self, after_id: str) -> bool:
        # A bare id (no epoch) older than every event of a stream that never dropped
        # one was not read from this stream: it comes from before a reset.
        return after_id != ZERO_ID and self.first_id is not None and after_id < self.first_id


class LiveStream(ABC):
    """Per-workspace streams to append to, read after a position, and wait on.

    A stream keeps at least the newest ``EVENTS_BUFFER_SIZE`` events for resumes;
    what is older may be trimmed (once archived), and a read that would skip
    trimmed events raises CursorExpired instead. A stream has an epoch, lost
    with its data: a position of another epoch is never resumed.
    """

    @abstractmethod
    async def append(self, workspace_id: str, stored: list[bytes]) -> list[str]:
        """Append events in order, all or nothing; return their ids (increasing)."""

    @abstractmethod
    async def read_after(
        self, workspace_id: str, after_id: str, *, count: int, block_ms: int | None = None
    ) -> Page:
        """Return up to ``count`` events after ``after_id``, waiting up to ``block_ms``.

        Raise CursorExpired if events after ``after_id`` were already trimmed. The
        page carries the stream's epoch at the time of the read.
        """

    async def check_cursor(self, workspace_id: str, position: Position) -> StreamState:
        """Raise CursorExpired if ``position`` is outside the live buffer (another epoch,
        events after it trimmed, or ahead of the stream); return the stream's state."""
        state = await self.stream_state(workspace_id)
        state.check(position)
        return state

    @abstractmethod
    async def stream_state(self, workspace_id: str) -> StreamState:
        """Return the stream's epoch and bounds, making the stream and its epoch if missing."""
