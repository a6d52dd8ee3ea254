"""What is known about the current request or connection, for logs and events.

Context variables follow the work through views, consumers, the broker and the
archiver; the JSON log formatter reads them, and emitted events copy them into
``source``.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)
workspace_id_var: ContextVar[str | None] = ContextVar("workspace_id", default=None)

CORRELATION_HEADER = "X-Correlation-Id"
MAX_CORRELATION_ID_LEN = 128


def new_correlation_id() -> str:
    """Return a fresh correlation id (16 hex digits, like a trace span id)."""
    return uuid.uuid4().hex[:16]


def accept_correlation_id(value: str | None) -> str:
    """Keep a caller's correlation id if it is reasonable, else make one."""
    if value and len(value) <= MAX_CORRELATION_ID_LEN and value.isprintable():
        return value
    return new_correlation_id()


@dataclass(frozen=True)
class RequestContext:
    """Where an action comes from: copied into the ``source`` of its events."""

    correlation_id: str
    transport: str
    ip: str | None = None
    service_topic: str | None = None
