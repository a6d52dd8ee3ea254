"""The broker of this process: Redis when ``REDIS_URL`` is set, else in memory."""

from __future__ import annotations

import asyncio
import weakref

from django.conf import settings

from events.broker.base import ArchiveItem, Broker, Page
from events.broker.memory import MemoryBroker

__all__ = ["ArchiveItem", "Broker", "Page", "get_broker", "reset_broker"]

_memory: MemoryBroker | None = None
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Broker] = (
    weakref.WeakKeyDictionary()
)


def get_broker() -> Broker:
    """Return the broker; a Redis client belongs to one event loop, so one per loop."""
    global _memory
    if not settings.REDIS_URL:
        if _memory is None:
            _memory = MemoryBroker(
                buffer_size=settings.EVENTS_BUFFER_SIZE, max_backlog=settings.ARCHIVE_MAX_BACKLOG
            )
        return _memory
    from events.broker.redis import RedisBroker

    loop = asyncio.get_running_loop()
    broker = _per_loop.get(loop)
    if broker is None:
        broker = _per_loop[loop] = RedisBroker(
            settings.REDIS_URL,
            buffer_size=settings.EVENTS_BUFFER_SIZE,
            max_backlog=settings.ARCHIVE_MAX_BACKLOG,
        )
    return broker


def reset_broker() -> None:
    """Forget the embedded broker's events and every client (tests, settings changes)."""
    global _memory
    _memory = None
    _per_loop.clear()
