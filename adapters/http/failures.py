"""Unexpected failures of HTTP requests: the log line, the error event, the 500 or 503.

Views (DRF or plain Django) reach :func:`handle_request_failure` through
``adapters.http.middleware.FailureMiddleware``; :func:`server_error` is Django's
``handler500`` for what escapes even that. The log and the error event are
``events.realtime.failures``'; this module turns them into responses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse, JsonResponse

from adapters.http.errors import service_error_response
from events.realtime.failures import internal_error_body, log_failure, report_failure
from kernel import outages
from kernel.caller import Caller
from kernel.context import RequestContext, correlation_id_var, user_id_var, workspace_id_var
from kernel.errors import ServiceUnavailable

_background: set[asyncio.Task] = set()


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
