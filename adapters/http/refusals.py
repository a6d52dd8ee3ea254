"""Django's own refusals in the contract's shape: a JSON 400 (or 413) and one warning line.

Django raises ``SuspiciousOperation`` for requests it will not serve: more
than ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` parameters (``TooManyFieldsSent``), a
body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``RequestDataTooBig``), a host
name outside ``ALLOWED_HOSTS`` (``DisallowedHost``), and others. Left to
Django, each answers its HTML 400 page and logs a stack trace (under DRF, even
a 500). :class:`adapters.http.middleware.DjangoRefusalMiddleware` parses what Django
parses lazily up front, so these are answered before any view; what is raised later goes
through :func:`refusal_response` too (``adapters.http.middleware.FailureMiddleware``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpResponse

from adapters.http.errors import service_error_response
from kernel.errors import RequestTooLarge, ServiceError, ValidationError

logger = logging.getLogger("events.refusals")
REFUSED = (SuspiciousOperation, BadRequest)


def as_service_error(exc: Exception) -> ServiceError:
    """The contract's error for one of Django's refusals (never the raw text: it echoes input)."""
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge(
            f"the request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return ValidationError(f"more than {limit} query or form parameters")
    if isinstance(exc, DisallowedHost):
        return ValidationError("the Host header names a host this service does not serve")
    return ValidationError("the request is malformed")


def refusal_response(exc: Exception) -> HttpResponse:
    """Answer a refusal in the contract's shape, with one warning line and no stack trace."""
    error = as_service_error(exc)
    logger.warning(
        "request refused: %s (%s)",
        error.message,
        type(exc).__name__,
        extra={"status": error.status},
    )
    return service_error_response(error)
