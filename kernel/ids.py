"""Event ids: opaque to clients, ordered by publish order within a workspace.

An id is the broker's stream entry id ``<ms>-<seq>`` written with fixed widths
(``0001764302400123-000000``) so that ids compare as strings in publish order,
in Python, in SQLite and in Elasticsearch alike.
"""

from __future__ import annotations

import re

from kernel.errors import ValidationError

_ID = re.compile(r"(\d{1,16})-(\d{1,10})")
ZERO_ID = "0000000000000000-0000000000"


def format_id(ms: int, seq: int) -> str:
    """Return the event id for a stream position."""
    return f"{ms:016d}-{seq:010d}"


def parse_id(value: str) -> tuple[int, int]:
    """Return ``(ms, seq)`` of an event id or stream id; ValidationError if malformed."""
    match = _ID.fullmatch(value or "")
    if not match:
        raise ValidationError(f"{value!r} is not an event id", details={"field": "cursor"})
    return int(match.group(1)), int(match.group(2))


def normalize_id(value: str) -> str:
    """Return an event id or stream id in the event id's fixed-width form."""
    return format_id(*parse_id(value))


def from_stream_id(stream_id: str | bytes) -> str:
    """Turn a Redis stream id (``1764302400123-0``) into an event id."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return format_id(*parse_id(text))


def to_stream_id(event_id: str) -> str:
    """Turn an event id back into the Redis stream id it came from."""
    ms, seq = parse_id(event_id)
    return f"{ms}-{seq}"


def timestamp_ms(event_id: str) -> int:
    """Return the millisecond timestamp carried by a well-formed id (cheap: per delivery)."""
    return int(event_id.partition("-")[0])
