"""The broker of this process: Redis when ``REDIS_URL`` is set, else in memory.

One backend gives two ports over the same streams: the live stream
(:mod:`events.broker.stream`: the hub, the long poll, publishing) and the archive
queue (:mod:`events.broker.archive_queue`: the archiver, the health check, the
backlog metric). Both are built here, together, from the settings.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import NamedTuple

from django.conf import settings

from events.broker.archive_queue import ArchiveItem, ArchiveQueue
from events.broker.memory import MemoryArchiveQueue, MemoryLiveStream
from events.broker.stream import LiveStream, Page

__all__ = [
    "ArchiveItem",
    "ArchiveQueue",
    "Backend",
    "LiveStream",
    "Page",
    "get_archive_queue",
    "get_live_stream",
    "reset_broker",
]


class Backend(NamedTuple):
    """The two ports of one broker."""

    stream: LiveStream
    queue: ArchiveQueue


_memory: Backend | None = None
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Backend] = (
    weakref.WeakKeyDictionary()
)


def memory_backend() -> Backend:
    """The embedded broker, sized by the settings: its stream feeds its queue."""
    queue = MemoryArchiveQueue(max_backlog=settings.ARCHIVE_MAX_BACKLOG)
    return Backend(MemoryLiveStream(buffer_size=settings.EVENTS_BUFFER_SIZE, archive=queue), queue)


def redis_backend(url: str) -> Backend:
    """The Redis broker at ``url``: one client for both ports."""
    from events.broker.redis import RedisLiveStream, redis_client
    from events.broker.redis_archive import RedisArchiveQueue

    client = redis_client(url)
    return Backend(
        RedisLiveStream(client, max_backlog=settings.ARCHIVE_MAX_BACKLOG),
        RedisArchiveQueue(client, buffer_size=settings.EVENTS_BUFFER_SIZE),
    )


def _backend() -> Backend:
    """This process's broker; a Redis client belongs to one event loop, so one per loop."""
    global _memory
    if not settings.REDIS_URL:
        if _memory is None:
            _memory = memory_backend()
        return _memory
    loop = asyncio.get_running_loop()
    backend = _per_loop.get(loop)
    if backend is None:
        backend = _per_loop[loop] = redis_backend(settings.REDIS_URL)
    return backend


def get_live_stream() -> LiveStream:
    """The live stream: append, read after a position, wait, epochs."""
    return _backend().stream


def get_archive_queue() -> ArchiveQueue:
    """The archive queue: claim, acknowledge, backlog."""
    return _backend().queue


def reset_broker() -> None:
    """Forget the embedded broker's events and every client (tests, settings changes)."""
    global _memory
    _memory = None
    _per_loop.clear()
