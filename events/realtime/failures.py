"""The one place where unexpected failures are handled.

A failure is logged with its stack trace and context, written as an ``error``
event to the workspace, and answered with the generic internal error body; a
dependency that does not answer (``kernel.outages``) is answered 503
``ServiceUnavailable`` with ``Retry-After`` instead, its error event kept until
the broker answers again (``events.realtime.error_events``).
Adapters call :func:`report_failure` (the WebSocket consumer, the archiver) or go
through ``adapters.http.failures`` (HTTP views: the 500 and 503 responses).
"""

from __future__ import annotations

import logging
from typing import Any

from events.realtime import error_events
from events.realtime.error_events import ErrorEvent
from kernel import outages
from kernel.caller import Caller
from kernel.context import RequestContext
from kernel.errors import ServiceUnavailable

logger = logging.getLogger("events.failures")

INTERNAL_ERROR = "InternalError"
INTERNAL_MESSAGE = "Internal error"


def internal_error_body(correlation_id: str | None) -> dict[str, Any]:
    """The only thing a client learns about an unexpected failure."""
    return {"error": INTERNAL_ERROR, "message": INTERNAL_MESSAGE, "correlationId": correlation_id}


def error_description(exc: BaseException, correlation_id: str | None) -> dict[str, Any]:
    """The ``error`` of an error event: every viewer reads it, so only the class, never
    the exception's text (it may hold secrets); the text is in the log under the same id."""
    name = type(exc).__name__
    return {
        "error": INTERNAL_ERROR,
        "message": name,
        "exception": name,
        "correlationId": correlation_id,
        "level": "error",
    }


async def report_failure(
    exc: BaseException,
    *,
    workspace_id: str | None,
    caller: Caller | None,
    context: RequestContext,
    where: str,
    logged: bool = False,
) -> dict[str, Any]:
    """Log the failure, emit its ``error`` event, and return the client's error body.

    A dependency that does not answer is the client's 503 (``ServiceUnavailable``);
    anything else is the generic 500.
    """
    if not logged:
        log_failure(exc, where)
    if workspace_id:
        error = error_description(exc, context.correlation_id)
        await error_events.emit(ErrorEvent(workspace_id, caller, context, where, error))
    if outages.dependency_of(exc):
        return ServiceUnavailable().as_body()
    return internal_error_body(context.correlation_id)


def log_failure(exc: BaseException, where: str) -> None:
    """The stack of an unexpected failure; for an outage, its first stack, then one line."""
    dependency = outages.dependency_of(exc)
    if dependency:
        outages.failed(dependency, exc, where)
    else:
        logger.error("unexpected failure in %s", where, exc_info=exc)
