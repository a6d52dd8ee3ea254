"""One access line per HTTP request: method, path, status and duration.

It runs just inside ``CorrelationIdMiddleware``, so the line carries the
request's correlation id, and after the view, so it also carries the user and
workspace the view identified. Query strings are logged with credentials
redacted.
"""

from __future__ import annotations

import logging
import time

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from adapters.http.middleware import InLoop
from kernel.redaction import redact_query

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


class AccessLogMiddleware(InLoop, MiddlewareMixin):
    """Log one line for every HTTP request once its response is ready."""

    def process_request(self, request: HttpRequest) -> None:
        request.access_started = time.monotonic()  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        log_access(request, response, request.access_started)  # type: ignore[attr-defined]
        return response
