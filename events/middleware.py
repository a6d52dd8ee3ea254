"""HTTP middleware: the correlation id of every request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from events.context import (
    CORRELATION_HEADER,
    accept_correlation_id,
    correlation_id_var,
    user_id_var,
    workspace_id_var,
)
from events.errors import ServiceError
from events.failures import handle_request_failure

# Django answers these itself (404, 403, 400); they are not failures.
DJANGO_ANSWERS = (Http404, DjangoPermissionDenied, BadRequest, SuspiciousOperation)


class CorrelationIdMiddleware:
    """Read ``X-Correlation-Id`` or make one; echo it; expose it to logs and events."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _start(self, request: HttpRequest) -> str:
        correlation_id = accept_correlation_id(request.headers.get(CORRELATION_HEADER))
        request.correlation_id = correlation_id  # type: ignore[attr-defined]
        correlation_id_var.set(correlation_id)
        user_id_var.set(None)
        workspace_id_var.set(None)
        return correlation_id

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
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


class FailureMiddleware(MiddlewareMixin):
    """Turn what a view raises into the contract's error body, and failures into a 500."""

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, DJANGO_ANSWERS):
            return None
        if isinstance(exc, ServiceError):
            return JsonResponse(exc.as_body(), status=exc.status)
        return handle_request_failure(request, exc)
