"""The one place where unexpected failures are handled.

A failure is logged with its stack trace and context, written as an ``error``
event to the workspace, and answered with the generic internal error body.
"""

from __future__ import annotations

import logging
from typing import Any

from events.context import RequestContext
from events.publishing import publish
from workspaces.caller import Caller

logger = logging.getLogger("events.failures")

INTERNAL_ERROR = "InternalError"
INTERNAL_MESSAGE = "Internal error"


def internal_error_body(correlation_id: str | None) -> dict[str, Any]:
    """The only thing a client learns about an unexpected failure."""
    return {"error": INTERNAL_ERROR, "message": INTERNAL_MESSAGE, "correlationId": correlation_id}


async def report_failure(
    exc: BaseException,
    *,
    workspace_id: str | None,
    caller: Caller | None,
    context: RequestContext,
    where: str,
    logged: bool = False,
) -> dict[str, Any]:
    """Log the failure, emit its ``error`` event, and return the client's error body."""
    if not logged:
        logger.error("unexpected failure in %s", where, exc_info=exc)
    if workspace_id:
        error = {"error": INTERNAL_ERROR, "message": f"{type(exc).__name__}: {exc}"[:2000]}
        error["level"] = "error"
        event = {"type": "error", "payload": {"where": where}, "options": {"persist": True}}
        try:
            await publish(workspace_id, [event], caller=caller, context=context, error=error)  # type: ignore[list-item]
        except Exception:
            logger.exception("could not emit the error event")
    return internal_error_body(context.correlation_id)
