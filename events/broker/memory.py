"""The embedded broker: per-workspace ring buffers in this process's memory.

Used when ``REDIS_URL`` is not set. It keeps the same promises as the Redis
broker within one process: ids in append order, a bounded live buffer with
resume, blocking reads (:class:`MemoryLiveStream`), and an archive queue
acknowledged after storage (:class:`MemoryArchiveQueue`). The stream feeds the
queue: an appended event enters both under one lock, so the queue holds
events in id order.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from events.broker.archive_queue import ArchiveItem, ArchiveQueue
from events.broker.stream import LiveStream, Page, StreamState
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


def _wake_all(waiters: Iterable[asyncio.Future]) -> None:
    for waiter in waiters:
        waiter.get_loop().call_soon_threadsafe(_wake, waiter)


async def _wait(lock: threading.Lock, waiter: asyncio.Future, block_ms: int, waiters: set) -> bool:
    """Wait for an append; False at the timeout. The waiter never outlives the wait:
    a quiet workspace's feed times out every few seconds, forever."""
    try:
        await asyncio.wait_for(waiter, block_ms / 1000)
    except TimeoutError:
        return False
    finally:
        with lock:
            waiters.discard(waiter)
    return True


def _newer_than(entries: deque[tuple[str, bytes]], after_id: str) -> list[tuple[str, bytes]]:
    """Entries after ``after_id``, oldest first; walks back from the newest."""
    found = []
    for entry in reversed(entries):
        if entry[0] <= after_id:
            break
        found.append(entry)
    found.reverse()
    return found


class MemoryArchiveQueue(ArchiveQueue):
    """This process's events not yet archived; safe to call from several threads and loops.

    Bounded by ``max_backlog``: past it, the oldest unclaimed event is dropped.
    """

    def __init__(self, *, max_backlog: int) -> None:
        self.max_backlog = max_backlog
        # Shared with the stream that feeds this queue (MemoryLiveStream).
        self.lock = threading.Lock()
        self._archive: deque[tuple[str, str, bytes]] = deque()
        self._pending: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self._waiters: set[asyncio.Future] = set()
        self.dropped = 0

    def enqueue(self, workspace_id: str, event_id: str, data: bytes) -> None:
        """Add an event just appended to a stream; the caller holds ``lock``."""
        self._archive.append((workspace_id, event_id, data))
        if len(self._archive) > self.max_backlog:
            self._archive.popleft()
            self.dropped += 1

    def take_waiters(self) -> set[asyncio.Future]:
        """The claims waiting for an event, to wake once ``lock`` is released (held now)."""
        waiters, self._waiters = self._waiters, set()
        return waiters

    async def claim(self, consumer: str, *, count: int, block_ms: int) -> list[ArchiveItem]:
        items = self._claim(count)
        if items or not block_ms:
            return items
        waiter = asyncio.get_running_loop().create_future()
        with self.lock:
            self._waiters.add(waiter)
        if not await _wait(self.lock, waiter, block_ms, self._waiters):
            return []
        return self._claim(count)

    def _claim(self, count: int) -> list[ArchiveItem]:
        now = time.monotonic()
        with self.lock:
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

    async def ack(self, items: list[ArchiveItem]) -> None:
        with self.lock:
            for item in items:
                self._pending.pop((item.workspace_id, item.envelope["id"]), None)

    async def backlog(self) -> int | None:
        with self.lock:
            return len(self._archive) + len(self._pending)

    async def ping(self) -> None:
        return None


class MemoryLiveStream(LiveStream):
    """This process's streams, feeding ``archive``; safe to call from several threads and loops."""

    def __init__(self, *, buffer_size: int, archive: MemoryArchiveQueue) -> None:
        self.buffer_size = buffer_size
        self.archive = archive
        self._lock = archive.lock
        self._streams: dict[str, _Stream] = {}
        self._last = (0, 0)

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

    async def append(self, workspace_id: str, stored: list[bytes]) -> list[str]:
        with self._lock:
            stream = self._stream(workspace_id)
            ids = [self._append(workspace_id, stream, data) for data in stored]
            waiters, stream.waiters = stream.waiters, set()
            archive_waiters = self.archive.take_waiters()
        _wake_all(waiters | archive_waiters)
        return ids

    def _append(self, workspace_id: str, stream: _Stream, data: bytes) -> str:
        event_id = self._next_id()
        if len(stream.entries) >= self.buffer_size:
            stream.max_deleted_id = stream.entries.popleft()[0]
        stream.entries.append((event_id, data))
        stream.last_id = event_id
        self.archive.enqueue(workspace_id, event_id, data)
        return event_id

    async def read_after(
        self, workspace_id: str, after_id: str, *, count: int, block_ms: int | None = None
    ) -> Page:
        parse_id(after_id)
        page, waiter = self._read_or_wait(workspace_id, after_id, count, block_ms)
        if waiter is None:
            return page
        waiters = self._stream(workspace_id).waiters
        if not await _wait(self._lock, waiter, block_ms or 0, waiters):
            return page
        return self._read_or_wait(workspace_id, after_id, count, None)[0]

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
