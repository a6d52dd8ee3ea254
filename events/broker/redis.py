"""The scaled broker's live stream: one Redis stream per workspace, shared by every process.

Keys (documented for other services in the README):

- ``events:stream:{workspaceId}``: a stream; each entry has one field,
  ``event``, the event's JSON (see :mod:`events.event`). The entry id is the
  event id. ``XADD`` with ``MAXLEN ~ ARCHIVE_MAX_BACKLOG`` bounds it; the
  archiver trims archived entries down to the live buffer.
- consumer group ``archiver`` on each stream: the history's reader, the archive
  queue (:mod:`events.broker.redis_archive`).
- consumer group ``epoch:<token>`` on each stream: the stream's epoch, made with
  the stream (``XGROUP CREATE ... $ MKSTREAM``) by whoever first reads it, so it
  is lost with the stream's data (see :mod:`events.positions`).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from events.broker.stream import LiveStream, Page, StreamState
from events.event import Envelope, envelope_from_stored
from events.positions import new_epoch
from kernel.errors import CursorExpired
from kernel.ids import ZERO_ID, from_stream_id, to_stream_id

STREAM_PREFIX = "events:stream:"
EVENT_FIELD = b"event"
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


def entry_envelope(workspace_id: str, stream_id: bytes, fields: dict) -> Envelope | None:
    """The event of a stream entry; None if it is not an event of this service."""
    data = fields.get(EVENT_FIELD)
    return envelope_from_stored(from_stream_id(stream_id), data, workspace_id) if data else None


def _entries_to_page(workspace_id: str, entries: list, after_id: str) -> Page:
    events = []
    last = after_id
    for stream_id, fields in entries:
        last = from_stream_id(stream_id)
        envelope = entry_envelope(workspace_id, stream_id, fields) if fields else None
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


def redis_client(url: str) -> Any:
    """The client the live stream and the archive queue of a process (and loop) share.

    redis-py's annotations of stream replies describe RESP3; we read RESP2 replies.
    """
    return aioredis.Redis.from_url(url, max_connections=10_000, socket_timeout=SOCKET_TIMEOUT_SECS)


class RedisLiveStream(LiveStream):
    """Workspace streams in Redis, bounded at ``max_backlog`` entries (the archive trims more)."""

    def __init__(self, redis: Any, *, max_backlog: int) -> None:
        self.redis = redis
        self.max_backlog = max_backlog

    async def append(self, workspace_id: str, stored: list[bytes]) -> list[str]:
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
