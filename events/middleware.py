"""HTTP middleware: the correlation id of every request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from events.context import (
    CORRELATION_HEADER,
    accept_correlation_id,
    correlation_id_var,
    user_id_var,
    workspace_id_var,
)


class CorrelationIdMiddleware:
    """Read ``X-Correlation-Id`` or make one; echo it; expose it to logs and events."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _start(self, request: HttpRequest) -> str:
        correlation_id = accept_correlation_id(request.headers.get(CORRELATION_HEADER))
        request.correlation_id = correlation_id  # type: ignore[attr-defined]
        correlation_id_var.set(correlation_id)
        user_id_var.set(None)
        workspace_id_var.set(None)
        return correlation_id

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        correlation_id = self._start(request)
        response = self.get_response(request)
        response[CORRELATION_HEADER] = correlation_id
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        correlation_id = self._start(request)
        response = await self.get_response(request)
        response[CORRELATION_HEADER] = correlation_id
        return response
