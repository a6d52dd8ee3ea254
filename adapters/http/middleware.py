"""HTTP middleware: the correlation id of every request."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

from adapters.http.errors import service_error_response
from adapters.http.failures import handle_request_failure
from adapters.http.refusals import REFUSED, refusal_response
from kernel.context import (
    CORRELATION_HEADER,
    accept_correlation_id,
    correlation_id_var,
    user_id_var,
    workspace_id_var,
)
from kernel.errors import ServiceError

# Django answers these itself (404, 403); they are not failures.
DJANGO_ANSWERS = (Http404, DjangoPermissionDenied)


class InLoop:
    """Mixed in before ``MiddlewareMixin``: under ASGI, the hooks run in the event loop.

    Django runs each hook of a ``MiddlewareMixin`` through ``sync_to_async``,
    a hop to a worker thread and back; for hooks that do no I/O, this runs
    them in place (eventsproject/loop_middleware.py says what that saved).
    Under WSGI, ``MiddlewareMixin`` calls the same hooks as always.
    """

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)  # type: ignore[attr-defined]
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


class CorrelationIdMiddleware(InLoop, MiddlewareMixin):
    """Read ``X-Correlation-Id`` or make one; echo it; expose it to logs and events."""

    def process_request(self, request: HttpRequest) -> None:
        correlation_id = accept_correlation_id(request.headers.get(CORRELATION_HEADER))
        request.correlation_id = correlation_id  # type: ignore[attr-defined]
        correlation_id_var.set(correlation_id)
        user_id_var.set(None)
        workspace_id_var.set(None)

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response[CORRELATION_HEADER] = request.correlation_id  # type: ignore[attr-defined]
        return response


class FailureMiddleware(MiddlewareMixin):
    """Turn what a view raises into the contract's error body, and failures into a 500."""

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, DJANGO_ANSWERS):
            return None
        if isinstance(exc, REFUSED):
            return refusal_response(exc)
        if isinstance(exc, ServiceError):
            return service_error_response(exc)
        return handle_request_failure(request, exc)


class DjangoRefusalMiddleware(InLoop, MiddlewareMixin):
    """Parse the host and the query string before anything else does; refuse in JSON."""

    def process_request(self, request: HttpRequest) -> HttpResponseBase | None:
        try:
            request.get_host()
            request.GET  # noqa: B018 - parsed now, so that a refusal is answered here
        except REFUSED as exc:
            return refusal_response(exc)
        return None
