"""JSON log lines on standard output, through the standard ``logging`` module.

``settings.LOGGING`` sends every record to :class:`StdoutHandler` with
:class:`JsonFormatter` (structlog's ``ProcessorFormatter``). Each line is one
JSON object: ``timestamp``, ``level``, ``logger``, ``message``, the request's
``correlationId``, ``userId`` and ``workspaceId`` (from ``kernel.context``)
when known, the ``extra`` fields of the call, and ``exception`` (the full
stack trace) when there is one. Credentials in messages and in exception
text are redacted (``kernel.redaction``).
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

from kernel.context import correlation_id_var, user_id_var, workspace_id_var
from kernel.redaction import redact_text

CONTEXT_VARS = (
    ("correlationId", correlation_id_var),
    ("userId", user_id_var),
    ("workspaceId", workspace_id_var),
)
# Record attributes that are not the caller's ``extra``: the standard ones, those
# formatters add, Django's request object (its repr holds the query string) and
# structlog's own.
_NOT_EXTRA = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request",
    "server_time",
    "color_message",
    "taskName",
    "_logger",
    "_name",
    "_from_structlog",
    "_record",
}


def add_extra(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Copy the ``extra`` fields of a standard-library record into the line."""
    record: logging.LogRecord | None = event_dict.get("_record")
    if record is not None and not event_dict.get("_from_structlog"):
        for key, value in record.__dict__.items():
            if key not in _NOT_EXTRA and not key.startswith("_"):
                event_dict.setdefault(key, value)
    return event_dict


def add_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add the correlation id, user and workspace of the current work, when known."""
    for key, var in CONTEXT_VARS:
        value = var.get()
        if value is not None:
            event_dict.setdefault(key, value)
    return event_dict


def add_level(_: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Add ``level`` as Python names it (``INFO``, ``ERROR``)."""
    record: logging.LogRecord | None = event_dict.get("_record")
    level = record.levelname if record is not None else method_name.upper()
    event_dict["level"] = "WARNING" if level == "WARN" else level
    return event_dict


def to_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Name the text ``message``, with any credential in it redacted."""
    event_dict["message"] = redact_text(str(event_dict.pop("event", "")))
    return event_dict


def redact_exception(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask secrets in the stack trace and the exception's text, as in the message."""
    exception = event_dict.get("exception")
    if isinstance(exception, str):
        event_dict["exception"] = redact_text(exception)
    return event_dict


def _default(value: Any) -> str:
    return str(value)


def render_json(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    """Render one line of JSON; values JSON cannot hold become strings."""
    options = orjson.OPT_NON_STR_KEYS
    return orjson.dumps(event_dict, default=_default, option=options).decode()


PROCESSORS: list[Any] = [
    add_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    add_extra,
    add_context,
    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
    structlog.processors.format_exc_info,
    redact_exception,
    to_message,
    render_json,
]


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """A ``logging`` formatter that writes each record as one JSON line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("processors", PROCESSORS)
        super().__init__(*args, **kwargs)


class OneLineSecurityFilter(logging.Filter):
    """Django's ``django.security.*`` refusals as one warning line: a bad request, not a bug."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop the stack trace and lower the level of Django's security records."""
        if record.name.startswith("django.security."):
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class StdoutHandler(logging.StreamHandler):
    """Write to the current ``sys.stdout`` (looked up at each line, as tests capture it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> IO[str]:
        """The process's standard output now."""
        return sys.stdout

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        """Ignore: the stream is always the current standard output."""


def configure_structlog() -> None:
    """Send structlog's loggers through ``logging``, so they come out as the same JSON."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
