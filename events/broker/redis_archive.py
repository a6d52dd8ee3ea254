"""The Redis broker's archive queue: what the archiver may trim, and entries it cannot parse.

Trimming keeps two things: the live buffer (the newest ``keep`` entries, for
resumes) and everything the archiver has not acknowledged yet. What is not
acknowledged starts at the oldest pending entry (read by an archiver, not yet
stored) or at the first entry the group has not read, whichever comes first;
older entries are archived. One script decides and trims, atomically, with no
event sent back over the network:

- nothing unacknowledged: ``XTRIM MAXLEN ~ keep``;
- at most ``keep`` entries from the first unacknowledged one on: the same;
- more: ``XTRIM MINID ~ <first unacknowledged>`` (the buffer is kept by those).

It never depends on the group's ``lag``, which Redis reports as unknown
(nil) once entries were deleted after the group's position.
"""

from __future__ import annotations

import logging
from typing import Any

from events.metrics import ARCHIVE_UNPARSABLE

logger = logging.getLogger("events.broker.redis")

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
