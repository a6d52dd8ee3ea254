"""The scaled broker: one Redis stream per workspace, shared by every process.

Keys (documented for other services in the README):

- ``events:stream:{workspaceId}``: a stream; each entry has one field,
  ``event``, the event's JSON (see :mod:`events.event`). The entry id is the
  event id. ``XADD`` with ``MAXLEN ~ ARCHIVE_MAX_BACKLOG`` bounds it; the
  archiver trims archived entries down to the live buffer.
- consumer group ``archiver`` on each stream: the history's reader.
- consumer group ``epoch:<token>`` on each stream: the stream's epoch, made with
  the stream (``XGROUP CREATE ... $ MKSTREAM``) by whoever first reads it, so it
  is lost with the stream's data (see :mod:`events.positions`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from events.broker.base import ArchiveItem, Broker, Page, StreamState
from events.broker.redis_archive import TRIM_SCRIPT, UnparsableLog
from events.event import Envelope, envelope_from_stored
from events.positions import new_epoch
from kernel.errors import CursorExpired
from kernel.ids import ZERO_ID, from_stream_id, to_stream_id

logger = logging.getLogger("events.broker.redis")

STREAM_PREFIX = "events:stream:"
EVENT_FIELD = b"event"
ARCHIVE_GROUP = "archiver"
ARCHIVE_RECLAIM_MSECS = 30_000
DISCOVERY_SECS = 2.0
# Longer than any blocking read (the hub blocks 5 s): redis-py's default of 5 s
# would time out an idle XREAD BLOCK 5000 and make the feed back off and retry.
SOCKET_TIMEOUT_SECS = 30.0

# The stream's epoch (made, with the stream, if missing) and bounds, in one atomic step:
# two processes that find a stream without an epoch agree on the one that is made.
STATE_SCRIPT = """
local key = KEYS[1]
local epoch = false
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', key)
if ok then
  for _, group in ipairs(groups) do
    if string.sub(group[2], 1, 6) == 'epoch:' then epoch = group[2] end
  end
end
if not epoch then
  epoch = 'epoch:' .. ARGV[1]
  redis.call('XGROUP', 'CREATE', key, epoch, '$', 'MKSTREAM')
end
local info = redis.call('XINFO', 'STREAM', key)
local state = {}
for i = 1, #info, 2 do state[info[i]] = info[i + 1] end
local first = false
if state['first-entry'] then first = state['first-entry'][1] end
local trimmed = 0
if state['entries-added'] > state['length'] then trimmed = 1 end
return {string.sub(epoch, 7), first, trimmed, state['last-generated-id']}
"""


def stream_key(workspace_id: str) -> str:
    """The Redis key of a workspace's stream."""
    return f"{STREAM_PREFIX}{workspace_id}"


def _envelope(workspace_id: str, stream_id: bytes, fields: dict) -> Envelope | None:
    data = fields.get(EVENT_FIELD)
    return envelope_from_stored(from_stream_id(stream_id), data, workspace_id) if data else None


def _entries_to_page(workspace_id: str, entries: list, after_id: str) -> Page:
    events = []
    last = after_id
    for stream_id, fields in entries:
        last = from_stream_id(stream_id)
        envelope = _envelope(workspace_id, stream_id, fields) if fields else None
        if envelope is not None:
            events.append(envelope)
    return Page(events, last)


def _state(reply: list[Any]) -> StreamState:
    epoch, first, trimmed, last = reply
    first_id = from_stream_id(first) if first else None
    last_id = from_stream_id(last)
    # Trimming does not move max-deleted-entry-id: once entries were trimmed, a
    # position before the oldest entry left may have missed some.
    floor = (first_id or last_id) if trimmed else ZERO_ID
    return StreamState(epoch.decode(), floor, first_id, last_id)


class RedisBroker(Broker):
    """Workspace streams in Redis, with a consumer group for the archiver."""

    def __init__(self, url: str, *, buffer_size: int, max_backlog: int) -> None:
        self.buffer_size = buffer_size
        self.max_backlog = max_backlog
        # redis-py's annotations of stream replies describe RESP3; we read RESP2 replies.
        self.redis: Any = aioredis.Redis.from_url(
            url, max_connections=10_000, socket_timeout=SOCKET_TIMEOUT_SECS
        )
        self._known_streams: list[bytes] = []
        self._grouped: set[bytes] = set()
        self._discovered_at = 0.0
        self._reclaimed_at = 0.0
        self._trim = self.redis.register_script(TRIM_SCRIPT)
        self._unparsable = UnparsableLog()

    async def publish(self, workspace_id: str, stored: list[bytes]) -> list[str]:
        key = stream_key(workspace_id)
        if len(stored) == 1:  # alone, it needs no MULTI/EXEC to stay contiguous
            entry_id = await self.redis.xadd(
                key, {EVENT_FIELD: stored[0]}, maxlen=self.max_backlog, approximate=True
            )
            return [from_stream_id(entry_id)]
        async with self.redis.pipeline(transaction=True) as pipe:
            for data in stored:
                pipe.xadd(key, {EVENT_FIELD: data}, maxlen=self.max_backlog, approximate=True)
            ids = await pipe.execute()
        return [from_stream_id(i) for i in ids]

    async def read_after(
        self, workspace_id: str, after_id: str, *, count: int, block_ms: int | None = None
    ) -> Page:
        key = stream_key(workspace_id)
        start = to_stream_id(after_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            if block_ms:
                pipe.xread({key: start}, count=count, block=block_ms)
            else:
                pipe.xrange(key, min=f"({start}", count=count)
            # Right after the read, on the same connection: no extra round trip.
            pipe.eval(STATE_SCRIPT, 1, key, new_epoch())
            reply, raw_state = await pipe.execute()
        state = _state(raw_state)
        if after_id < state.floor:
            raise CursorExpired()  # what followed ``after_id`` may be trimmed: never skip it
        entries = (reply[0][1] if reply else []) if block_ms else reply
        page = _entries_to_page(workspace_id, entries, after_id)
        return Page(page.events, page.last_id, state.epoch)

    async def stream_state(self, workspace_id: str) -> StreamState:
        return _state(await self.redis.eval(STATE_SCRIPT, 1, stream_key(workspace_id), new_epoch()))

    async def _streams(self) -> list[bytes]:
        now = time.monotonic()
        if now - self._discovered_at > DISCOVERY_SECS:
            self._discovered_at = now
            self._known_streams = [
                key async for key in self.redis.scan_iter(match=f"{STREAM_PREFIX}*", count=1000)
            ]
        for key in self._known_streams:
            if key not in self._grouped:
                await self._create_group(key)
        return self._known_streams

    async def _create_group(self, key: bytes) -> None:
        try:
            await self.redis.xgroup_create(key, ARCHIVE_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped.add(key)

    async def archive_read(self, consumer: str, *, count: int, block_ms: int) -> list[ArchiveItem]:
        try:
            return await self._archive_read(consumer, count=count, block_ms=block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        # Redis lost the group (restarted without its data, or someone deleted it): the
        # groups are created again, from the start of each stream, and the read goes on.
        logger.warning("the archiver's consumer group is gone: creating it again from 0")
        self._grouped.clear()
        self._discovered_at = 0.0
        return await self._archive_read(consumer, count=count, block_ms=block_ms)

    async def _archive_read(self, consumer: str, *, count: int, block_ms: int) -> list[ArchiveItem]:
        keys = await self._streams()
        if not keys:
            # Nothing to read yet: wait as a blocking read would, never spin the event loop.
            await asyncio.sleep((block_ms or 0) / 1000)
            return []
        items = await self._reclaim(consumer, keys, count)
        if items:
            return items
        reply = await self.redis.xreadgroup(
            ARCHIVE_GROUP, consumer, dict.fromkeys(keys, ">"), count=count, block=block_ms or None
        )
        return [item for key, entries in reply or [] for item in await self._take(key, entries)]

    async def _reclaim(self, consumer: str, keys: list[bytes], count: int) -> list[ArchiveItem]:
        """Take over entries a dead archiver claimed but never acknowledged."""
        now = time.monotonic()
        if now - self._reclaimed_at < ARCHIVE_RECLAIM_MSECS / 1000:
            return []
        self._reclaimed_at = now
        items: list[ArchiveItem] = []
        for key in keys:
            reply = await self.redis.xautoclaim(
                key, ARCHIVE_GROUP, consumer, ARCHIVE_RECLAIM_MSECS, "0-0", count=count
            )
            items.extend(await self._take(key, reply[1]))
        return items

    async def _take(self, key: bytes, entries: list[Any]) -> list[ArchiveItem]:
        """The events among entries read; the others are acknowledged at once and counted.

        An entry that is not an event of this service (another service's fields, bad
        JSON) would otherwise stay pending forever, be claimed again every 30 s, and
        hold back the trimming of the stream.
        """
        workspace_id = key.decode()[len(STREAM_PREFIX) :]
        items: list[ArchiveItem] = []
        skipped: list[Any] = []
        for stream_id, fields in entries:
            if not fields:  # deleted since it was read
                continue
            envelope = _envelope(workspace_id, stream_id, fields)
            if envelope is None:
                skipped.append(stream_id)
            else:
                items.append(ArchiveItem(workspace_id, envelope))
        if skipped:
            await self.redis.xack(key, ARCHIVE_GROUP, *skipped)
            self._unparsable.skipped(key, skipped)
        return items

    async def archive_ack(self, items: list[ArchiveItem]) -> None:
        by_key: dict[str, list[str]] = {}
        for item in items:
            by_key.setdefault(stream_key(item.workspace_id), []).append(
                to_stream_id(item.envelope["id"])
            )
        for key, ids in by_key.items():
            await self.redis.xack(key, ARCHIVE_GROUP, *ids)
            await self._trim_archived(key)

    async def _trim_archived(self, key: str) -> None:
        """Trim what is archived, down to the live buffer (``events.broker.redis_archive``)."""
        try:
            await self._trim(keys=[key], args=[ARCHIVE_GROUP, self.buffer_size])
        except ResponseError:  # the stream or its group is gone (Redis lost its data)
            return

    async def archive_backlog(self) -> int | None:
        total = 0
        for key in await self._streams():
            for group in await self.redis.xinfo_groups(key):
                if group["name"] != ARCHIVE_GROUP.encode():
                    continue
                if group.get("lag") is None:
                    return None  # entries were deleted after the group's position: unknown
                total += group["lag"] + group.get("pending", 0)
        return total

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()
