"""Positions a client resumes from: ``<epoch>:<event id>``, or a bare event id.

Every workspace stream has an epoch, made when the stream is made and lost with
it (a broker restarted empty, an embedded broker's new process). A position
carries the epoch it was read in, so a resume in another epoch is answered as
outside the live buffer (410, WebSocket 4410) instead of silently skipping what
the reset lost (Centrifugo's "insufficient state").
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from kernel.errors import ValidationError
from kernel.ids import normalize_id

MAX_POSITION_CHARS = 96
_EPOCH = re.compile(r"[A-Za-z0-9_-]{1,40}")
RESET_MESSAGE = "The stream was reset since this position; catch up through search"


def new_epoch() -> str:
    """A fresh epoch token."""
    return secrets.token_hex(6)


@dataclass(frozen=True)
class Position:
    """An event id, and the epoch it belongs to (None for a bare id of today's form)."""

    event_id: str
    epoch: str | None = None

    def __str__(self) -> str:
        return f"{self.epoch}:{self.event_id}" if self.epoch else self.event_id


def parse_position(value: str, field: str = "cursor") -> Position:
    """Parse ``<epoch>:<id>`` or ``<id>``; ValidationError naming ``field`` if malformed."""
    if len(value) > MAX_POSITION_CHARS:
        raise ValidationError(
            f"{field} is longer than {MAX_POSITION_CHARS} characters",
            details={"field": field, "limit": MAX_POSITION_CHARS},
        )
    epoch, colon, event_id = value.rpartition(":")
    if colon and not _EPOCH.fullmatch(epoch):
        raise ValidationError(f"{value!r} is not a position", details={"field": field})
    try:
        normalized = normalize_id(event_id)
    except ValidationError:
        raise ValidationError(
            f"{value!r} is not an event id or position", details={"field": field}
        ) from None
    return Position(normalized, epoch or None)
