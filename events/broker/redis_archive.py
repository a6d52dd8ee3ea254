"""The Redis broker's archive queue: a consumer group on each workspace's stream.

The group ``archiver`` on every ``events:stream:*`` key (found by ``SCAN`` every
``DISCOVERY_SECS``, the group made from ``0`` where missing) gives each entry to
one archiver; an entry a dead archiver claimed is taken over (``XAUTOCLAIM``)
after ``ARCHIVE_RECLAIM_MSECS``. Entries that are not events of this service
are acknowledged at once and counted (:class:`UnparsableLog`).

Trimming keeps two things: the live buffer (the newest ``keep`` entries, for
resumes) and everything the archiver has not acknowledged yet. What is not
acknowledged starts at the oldest pending entry (read by an archiver, not yet
stored) or at the first entry the group has not read, whichever comes first;
older entries are archived. One script decides and trims, atomically, with no
event sent back over the network:

- nothing unacknowledged: ``XTRIM MAXLEN ~ keep``;
- at most ``keep`` entries from the first unacknowledged one on: the same;
- more: ``XTRIM MINID ~ <first unacknowledged>`` (the buffer is kept by those).

The trimming never depends on the group's ``lag``, which Redis reports as unknown
(nil) once entries were deleted after the group's position.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.exceptions import ResponseError

from events.broker.archive_queue import ArchiveItem, ArchiveQueue
from events.broker.redis import STREAM_PREFIX, entry_envelope, stream_key
from events.metrics import ARCHIVE_UNPARSABLE
from kernel.ids import to_stream_id

logger = logging.getLogger("events.broker.redis")

ARCHIVE_GROUP = "archiver"
ARCHIVE_RECLAIM_MSECS = 30_000
DISCOVERY_SECS = 2.0
LOGGED_STREAMS_MAX = 10_000

TRIM_SCRIPT = """
local key, group, keep = KEYS[1], ARGV[1], tonumber(ARGV[2])
local function parse(id)
  local ms, seq = string.match(id, '(%d+)-(%d+)')
  return tonumber(ms), tonumber(seq)
end
local function older(a, b)
  if not a then return b end
  local ams, aseq = parse(a)
  local bms, bseq = parse(b)
  if ams < bms or (ams == bms and aseq < bseq) then return a end
  return b
end
local bound = nil
local pending = redis.call('XPENDING', key, group)
if pending[1] > 0 then bound = pending[2] end
local last = nil
for _, info in ipairs(redis.call('XINFO', 'GROUPS', key)) do
  local fields = {}
  for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
  if fields['name'] == group then last = fields['last-delivered-id'] end
end
if not last then return -1 end
local unread = redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 1)
if #unread > 0 then bound = older(bound, unread[1][1]) end
if bound then
  local kept = redis.call('XRANGE', key, bound, '+', 'COUNT', keep + 1)
  if #kept > keep then return redis.call('XTRIM', key, 'MINID', '~', bound) end
end
return redis.call('XTRIM', key, 'MAXLEN', '~', keep)
"""


class UnparsableLog:
    """Counts entries that are not events of this service; logs once per stream."""

    def __init__(self) -> None:
        self.logged: set[bytes] = set()

    def skipped(self, key: bytes, ids: list[Any]) -> None:
        """``ids`` of ``key`` were acknowledged without being archived."""
        ARCHIVE_UNPARSABLE.inc(len(ids))
        if key in self.logged:
            return
        if len(self.logged) >= LOGGED_STREAMS_MAX:
            self.logged.clear()
        self.logged.add(key)
        first = ids[0].decode() if isinstance(ids[0], bytes) else ids[0]
        logger.warning(
            "skipped %d entries of %s that are not events of this service (the first: %s); "
            "further ones of this stream are only counted (events_archive_unparsable_total)",
            len(ids),
            key.decode(),
            first,
        )


class RedisArchiveQueue(ArchiveQueue):
    """The ``archiver`` consumer group of every workspace stream; trims what is archived."""

    def __init__(self, redis: Any, *, buffer_size: int) -> None:
        self.redis = redis
        self.buffer_size = buffer_size
        self._known_streams: list[bytes] = []
        self._grouped: set[bytes] = set()
        self._discovered_at = 0.0
        self._reclaimed_at = 0.0
        self._trim = self.redis.register_script(TRIM_SCRIPT)
        self._unparsable = UnparsableLog()

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

    async def claim(self, consumer: str, *, count: int, block_ms: int) -> list[ArchiveItem]:
        try:
            return await self._claim(consumer, count=count, block_ms=block_ms)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        # Redis lost the group (restarted without its data, or someone deleted it): the
        # groups are created again, from the start of each stream, and the read goes on.
        logger.warning("the archiver's consumer group is gone: creating it again from 0")
        self._grouped.clear()
        self._discovered_at = 0.0
        return await self._claim(consumer, count=count, block_ms=block_ms)

    async def _claim(self, consumer: str, *, count: int, block_ms: int) -> list[ArchiveItem]:
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
            envelope = entry_envelope(workspace_id, stream_id, fields)
            if envelope is None:
                skipped.append(stream_id)
            else:
                items.append(ArchiveItem(workspace_id, envelope))
        if skipped:
            await self.redis.xack(key, ARCHIVE_GROUP, *skipped)
            self._unparsable.skipped(key, skipped)
        return items

    async def ack(self, items: list[ArchiveItem]) -> None:
        by_key: dict[str, list[str]] = {}
        for item in items:
            by_key.setdefault(stream_key(item.workspace_id), []).append(
                to_stream_id(item.envelope["id"])
            )
        for key, ids in by_key.items():
            await self.redis.xack(key, ARCHIVE_GROUP, *ids)
            await self._trim_archived(key)

    async def _trim_archived(self, key: str) -> None:
        """Trim what is archived, down to the live buffer (``TRIM_SCRIPT``)."""
        try:
            await self._trim(keys=[key], args=[ARCHIVE_GROUP, self.buffer_size])
        except ResponseError:  # the stream or its group is gone (Redis lost its data)
            return

    async def backlog(self) -> int | None:
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
