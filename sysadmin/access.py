"""One access line per HTTP request: method, path, status and duration.

It runs just inside ``CorrelationIdMiddleware``, so the line carries the
request's correlation id, and after the view, so it also carries the user and
workspace the view identified. Query strings are logged with credentials
redacted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from sysadmin.redaction import redact_query

logger = logging.getLogger("events.access")


def log_access(request: HttpRequest, response: HttpResponse, started: float) -> None:
    """Write the access line of one request."""
    query = redact_query(request.META.get("QUERY_STRING", ""))
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    logger.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "query": query,
            "status": response.status_code,
            "durationMs": duration_ms,
            "ip": request.META.get("REMOTE_ADDR"),
        },
    )


class AccessLogMiddleware:
    """Log one line for every HTTP request once its response is ready."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        started = time.monotonic()
        response = self.get_response(request)
        log_access(request, response, started)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        response = await self.get_response(request)
        log_access(request, response, started)
        return response
