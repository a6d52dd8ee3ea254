"""The broker's interface: a durable, bounded, ordered stream per workspace.

Two implementations: :mod:`events.broker.memory` (one process, the embedded
default) and :mod:`events.broker.redis` (``REDIS_URL``: Redis streams, shared
by every service process and by other platform services). Events are stored
as JSON without ``id`` and ``size`` (see :mod:`events.event`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from events.event import Envelope

AHEAD_MESSAGE = "The cursor is ahead of this workspace's stream; catch up through search"


class BrokerUnavailable(Exception):
    """The broker does not answer (what a feed that cannot read tells a long poll)."""


@dataclass(frozen=True)
class ArchiveItem:
    """An event handed to the archiver, to be acknowledged once stored."""

    workspace_id: str
    envelope: Envelope


@dataclass(frozen=True)
class Page:
    """Events read after a position, and the position to read from next."""

    events: list[Envelope]
    last_id: str


class Broker(ABC):
    """A per-workspace event stream with resume, blocking reads and archiving."""

    @abstractmethod
    async def publish(self, workspace_id: str, stored: list[bytes]) -> list[str]:
        """Append events in order, all or nothing; return their ids."""

    @abstractmethod
    async def read_after(
        self, workspace_id: str, after_id: str, *, count: int, block_ms: int | None = None
    ) -> Page:
        """Return up to ``count`` events after ``after_id``, waiting up to ``block_ms``.

        Raise CursorExpired if events after ``after_id`` were already trimmed.
        """

    @abstractmethod
    async def check_cursor(self, workspace_id: str, after_id: str) -> None:
        """Raise CursorExpired if ``after_id`` is outside the live buffer (events after
        it were trimmed, or it is ahead of the stream); ValidationError if malformed."""

    @abstractmethod
    async def last_id(self, workspace_id: str) -> str:
        """Return the id of the newest event (``ZERO_ID`` for an empty stream)."""

    @abstractmethod
    async def archive_read(self, consumer: str, *, count: int, block_ms: int) -> list[ArchiveItem]:
        """Claim events not yet archived (pending ones of dead consumers included)."""

    @abstractmethod
    async def archive_ack(self, items: list[ArchiveItem]) -> None:
        """Mark events as stored in the history."""

    @abstractmethod
    async def archive_backlog(self) -> int:
        """Return how many events wait for the archiver."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the broker does not answer."""

    async def close(self) -> None:  # noqa: B027 - an optional hook; the memory broker has nothing to release
        """Release connections."""
