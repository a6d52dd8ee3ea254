"""The one place where unexpected failures are handled.

A failure is logged with its stack trace and context, written as an ``error``
event to the workspace, and answered with the generic internal error body; a
dependency that does not answer (``events.outages``) is answered 503
``ServiceUnavailable`` with ``Retry-After`` instead, its error event kept until
the broker answers again (``events.error_events``).
HTTP views (DRF or plain Django) reach :func:`handle_request_failure` through
``events.middleware.FailureMiddleware``; :func:`server_error` is Django's
``handler500`` for what escapes even that; WebSocket consumers call
:func:`report_failure` themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse, JsonResponse

from events import error_events, outages
from events.context import RequestContext, correlation_id_var, user_id_var, workspace_id_var
from events.error_events import ErrorEvent
from events.errors import ServiceUnavailable, service_error_response
from workspaces.caller import Caller

logger = logging.getLogger("events.failures")
_background: set[asyncio.Task] = set()

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


def request_caller(request: HttpRequest, workspace_id: str) -> Caller | None:
    """The caller a view identified (``request.caller``), or one from the user context."""
    caller = getattr(request, "caller", None)
    if caller is not None:
        return caller
    user_id = user_id_var.get()
    return Caller(workspace_id, user_id) if user_id else None


def _run_from_sync(function: Callable[..., Awaitable[Any]], /, **kwargs: Any) -> None:
    """Run a coroutine function to completion from sync code, or schedule it if a loop runs here."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(function)(**kwargs)
        return
    task: asyncio.Task = asyncio.ensure_future(function(**kwargs), loop=loop)
    _background.add(task)
    task.add_done_callback(_background.discard)


def internal_error_response(correlation_id: str | None) -> HttpResponse:
    """The generic 500, marked as logged so Django does not log it again without the stack."""
    response = JsonResponse(internal_error_body(correlation_id), status=500)
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def failure_response(exc: BaseException, correlation_id: str | None) -> HttpResponse:
    """503 with ``Retry-After`` when a dependency did not answer, else the generic 500."""
    if not outages.dependency_of(exc):
        return internal_error_response(correlation_id)
    response = service_error_response(ServiceUnavailable())
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def handle_request_failure(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """Log an HTTP request's unexpected failure, emit its ``error`` event, answer 500 (503)."""
    correlation_id = correlation_id_var.get() or getattr(request, "correlation_id", None)
    context = RequestContext(
        correlation_id=correlation_id or "", transport="http", ip=request.META.get("REMOTE_ADDR")
    )
    where = f"{request.method} {request.path}"
    log_failure(exc, where)
    workspace_id = workspace_id_var.get()
    if workspace_id:
        _run_from_sync(
            report_failure,
            exc=exc,
            workspace_id=workspace_id,
            caller=request_caller(request, workspace_id),
            context=context,
            where=where,
            logged=True,
        )
    return failure_response(exc, context.correlation_id)


def server_error(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Django's ``handler500``: the generic body, never an HTML page."""
    return internal_error_response(correlation_id_var.get())
