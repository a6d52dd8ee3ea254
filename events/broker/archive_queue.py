"""The archive queue port: the work queue the archiver takes every appended event from.

Its users move events to the history and watch that they do: the archiver
(:mod:`history.archiver`) claims batches and acknowledges them once stored,
the health check pings it (:mod:`sysadmin.health`), and ``/metrics`` reads its
backlog (:mod:`sysadmin.metrics`). Every event appended to a live stream
(:mod:`events.broker.stream`) enters the queue; the two ports are separate
because their users are: a queue has consumers, claims and acknowledgements,
which a live delivery never needs, and a stream has epochs and cursors, which
the archiver never needs.

Delivery is at least once: an event claimed and not acknowledged (its archiver
died) is claimed again after a while, by any consumer. Several archivers, in
several processes, share one queue; each event goes to one of them at a time.

Two implementations: :class:`events.broker.memory.MemoryArchiveQueue` and
:class:`events.broker.redis_archive.RedisArchiveQueue` (a consumer group on each
workspace's Redis stream).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from events.event import Envelope


@dataclass(frozen=True)
class ArchiveItem:
    """An event handed to the archiver, to be acknowledged once stored."""

    workspace_id: str
    envelope: Envelope


class ArchiveQueue(ABC):
    """Events not yet archived, of every workspace, claimed in batches and acknowledged."""

    @abstractmethod
    async def claim(self, consumer: str, *, count: int, block_ms: int) -> list[ArchiveItem]:
        """Claim up to ``count`` events not yet archived, waiting up to ``block_ms`` for one.

        Entries a dead consumer claimed and never acknowledged are claimed again.
        """

    @abstractmethod
    async def ack(self, items: list[ArchiveItem]) -> None:
        """Mark events as stored in the history: never claimed again, free to trim."""

    @abstractmethod
    async def backlog(self) -> int | None:
        """Return how many events wait for the archiver (claimed ones included); None
        when the broker cannot tell."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the broker does not answer."""
