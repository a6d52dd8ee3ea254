"""The embedded broker: per-workspace ring buffers in this process's memory.

Used when ``REDIS_URL`` is not set. It keeps the same promises as the Redis
broker within one process: ids in publish order, a bounded live buffer with
resume, blocking reads, and an archive queue acknowledged after storage.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from events.broker.base import ArchiveItem, Broker, Page, StreamState
from events.event import envelope_from_stored
from events.positions import new_epoch
from kernel.errors import CursorExpired
from kernel.ids import ZERO_ID, format_id, parse_id

ARCHIVE_RECLAIM_SECS = 30.0


@dataclass
class _Stream:
    entries: deque[tuple[str, bytes]]
    last_id: str = ZERO_ID
    max_deleted_id: str = ZERO_ID
    waiters: set[asyncio.Future] = field(default_factory=set)
    # This process's memory is the stream: a new process (or broker) is a new epoch.
    epoch: str = field(default_factory=new_epoch)


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _newer_than(entries: deque[tuple[str, bytes]], after_id: str) -> list[tuple[str, bytes]]:
    """Entries after ``after_id``, oldest first; walks back from the newest."""
    found = []
    for entry in reversed(entries):
        if entry[0] <= after_id:
            break
        found.append(entry)
    found.reverse()
    return found


class MemoryBroker(Broker):
    """One process's broker; safe to call from several threads and event loops."""

    def __init__(self, *, buffer_size: int, max_backlog: int) -> None:
        self.buffer_size = buffer_size
        self.max_backlog = max_backlog
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        self._last = (0, 0)
        self._archive: deque[tuple[str, str, bytes]] = deque()
        self._pending: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self._archive_waiters: set[asyncio.Future] = set()
        self.dropped = 0

    def _stream(self, workspace_id: str) -> _Stream:
        stream = self._streams.get(workspace_id)
        if stream is None:
            stream = self._streams[workspace_id] = _Stream(deque())
        return stream

    def _next_id(self) -> str:
        now_ms = int(time.time() * 1000)
        ms, seq = self._last
        self._last = (now_ms, 0) if now_ms > ms else (ms, seq + 1)
        return format_id(*self._last)

    async def publish(self, workspace_id: str, stored: list[bytes]) -> list[str]:
        with self._lock:
            stream = self._stream(workspace_id)
            ids = [self._append(workspace_id, stream, data) for data in stored]
            waiters, stream.waiters = stream.waiters, set()
            archive_waiters, self._archive_waiters = self._archive_waiters, set()
        for waiter in waiters | archive_waiters:
            waiter.get_loop().call_soon_threadsafe(_wake, waiter)
        return ids

    def _append(self, workspace_id: str, stream: _Stream, data: bytes) -> str:
        event_id = self._next_id()
        if len(stream.entries) >= self.buffer_size:
            stream.max_deleted_id = stream.entries.popleft()[0]
        stream.entries.append((event_id, data))
        stream.last_id = event_id
        self._archive.append((workspace_id, event_id, data))
        if len(self._archive) > self.max_backlog:
            self._archive.popleft()
            self.dropped += 1
        return event_id

    async def read_after(
        self, workspace_id: str, after_id: str, *, count: int, block_ms: int | None = None
    ) -> Page:
        parse_id(after_id)
        page, waiter = self._read_or_wait(workspace_id, after_id, count, block_ms)
        if waiter is None:
            return page
        if not await self._wait(waiter, block_ms or 0, self._stream(workspace_id).waiters):
            return page
        return self._read_or_wait(workspace_id, after_id, count, None)[0]

    async def _wait(self, waiter: asyncio.Future, block_ms: int, waiters: set) -> bool:
        """Wait for a publish; False at the timeout. The waiter never outlives the wait:
        a quiet workspace's feed times out every few seconds, forever."""
        try:
            await asyncio.wait_for(waiter, block_ms / 1000)
        except TimeoutError:
            return False
        finally:
            with self._lock:
                waiters.discard(waiter)
        return True

    def _read_or_wait(
        self, workspace_id: str, after_id: str, count: int, block_ms: int | None
    ) -> tuple[Page, asyncio.Future | None]:
        with self._lock:
            stream = self._stream(workspace_id)
            if after_id < stream.max_deleted_id:
                raise CursorExpired()  # what followed ``after_id`` was dropped: never skip it
            found = _newer_than(stream.entries, after_id)
            if found or not block_ms:
                return self._page(workspace_id, stream, found[:count], after_id), None
            waiter = asyncio.get_running_loop().create_future()
            stream.waiters.add(waiter)
            return Page([], after_id, stream.epoch), waiter

    @staticmethod
    def _page(
        workspace_id: str, stream: _Stream, entries: list[tuple[str, bytes]], after_id: str
    ) -> Page:
        events = [envelope_from_stored(i, d, workspace_id) for i, d in entries]
        last = entries[-1][0] if entries else after_id
        return Page([e for e in events if e is not None], last, stream.epoch)

    async def stream_state(self, workspace_id: str) -> StreamState:
        with self._lock:
            stream = self._stream(workspace_id)
            first = stream.entries[0][0] if stream.entries else None
            return StreamState(stream.epoch, stream.max_deleted_id, first, stream.last_id)

    async def archive_read(self, consumer: str, *, count: int, block_ms: int) -> list[ArchiveItem]:
        items = self._claim(count)
        if items or not block_ms:
            return items
        waiter = asyncio.get_running_loop().create_future()
        with self._lock:
            self._archive_waiters.add(waiter)
        if not await self._wait(waiter, block_ms, self._archive_waiters):
            return []
        return self._claim(count)

    def _claim(self, count: int) -> list[ArchiveItem]:
        now = time.monotonic()
        with self._lock:
            raw = self._reclaim(now, count)
            while self._archive and len(raw) < count:
                raw.append(self._archive.popleft())
            for ws, event_id, data in raw:
                self._pending[(ws, event_id)] = (now, data)
                self._pending.move_to_end((ws, event_id))
        items = [(ws, envelope_from_stored(i, d, ws)) for ws, i, d in raw]
        return [ArchiveItem(ws, e) for ws, e in items if e is not None]

    def _reclaim(self, now: float, count: int) -> list[tuple[str, str, bytes]]:
        """Claimed items nobody acknowledged in time; pending is kept oldest claim first."""
        reclaimed: list[tuple[str, str, bytes]] = []
        for (ws, event_id), (claimed_at, data) in self._pending.items():
            if len(reclaimed) >= count or now - claimed_at <= ARCHIVE_RECLAIM_SECS:
                break
            reclaimed.append((ws, event_id, data))
        return reclaimed

    async def archive_ack(self, items: list[ArchiveItem]) -> None:
        with self._lock:
            for item in items:
                self._pending.pop((item.workspace_id, item.envelope["id"]), None)

    async def archive_backlog(self) -> int | None:
        with self._lock:
            return len(self._archive) + len(self._pending)

    async def ping(self) -> None:
        return None
