"""What authentication found, kept for a few seconds: API keys and workspaces.

Every HTTP request (a long poll, an emit) authenticated from scratch: two ORM
queries, a quarter of its CPU. Found keys and workspaces are kept for
``EVENTS_AUTH_CACHE_SECS`` (default 5; 0 keeps nothing). Every process forgets
them at once when a key is revoked, or a key, member or workspace is saved or deleted
(``workspaces.changes``, through the control plane); a process that missed that message
sees the change within that time. A secret that
matched nothing is never kept, so a wrong guess always costs a lookup.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

MAX_ENTRIES = 10_000


class TtlCache:
    """A dict whose entries expire; safe to share between threads (single dict operations)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Any]] = {}
        self.generation = 0

    def get(self, key: str) -> Any:
        """The value kept for ``key``, or None if there is none or it expired."""
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, value: Any, *, looked_up_in: int | None = None) -> None:
        """Keep ``value`` for the configured time (not at all when it is 0).

        ``looked_up_in``: the :attr:`generation` read before the lookup that found
        ``value``; if the cache was cleared since (credentials changed meanwhile), the value
        may be stale and is not kept.
        """
        ttl = settings.EVENTS_AUTH_CACHE_SECS
        if ttl <= 0 or (looked_up_in is not None and looked_up_in != self.generation):
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + ttl, value)

    def clear(self) -> None:
        """Forget everything, and what lookups under way will find."""
        self.generation += 1
        self._entries.clear()


KEYS = TtlCache()
WORKSPACES = TtlCache()


def forget_all(**_: Any) -> None:
    """Forget every kept key and workspace."""
    KEYS.clear()
    WORKSPACES.clear()
