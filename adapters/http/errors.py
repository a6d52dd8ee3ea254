"""Service errors as HTTP responses: DRF's exception handler and plain Django responses.

The errors themselves (``kernel.errors``) know their code, status and body; this module is
where they meet DRF and Django: DRF's own exceptions are translated into ours, and both
render in the contract's shape, with ``Retry-After`` when the client should come back.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.http import JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from kernel.errors import (
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RetryLater,
    ServiceError,
    TooManyRequests,
    UnsupportedMediaType,
    ValidationError,
)

R = TypeVar("R", Response, JsonResponse)

_DRF_ERRORS: list[tuple[type[Exception], type[ServiceError]]] = [
    (drf_exceptions.ParseError, ValidationError),
    (drf_exceptions.ValidationError, ValidationError),
    (drf_exceptions.NotAuthenticated, NotAuthenticated),
    (drf_exceptions.AuthenticationFailed, NotAuthenticated),
    (drf_exceptions.PermissionDenied, PermissionDenied),
    (drf_exceptions.NotFound, NotFound),
    (drf_exceptions.MethodNotAllowed, MethodNotAllowed),
    (drf_exceptions.UnsupportedMediaType, UnsupportedMediaType),
    (drf_exceptions.Throttled, TooManyRequests),
]


def from_drf(exc: Exception) -> ServiceError | None:
    """Translate one of DRF's own exceptions into ours."""
    for drf_type, ours in _DRF_ERRORS:
        if isinstance(exc, drf_type):
            detail = getattr(exc, "detail", None)
            if isinstance(detail, str):
                return ours(str(detail))
            return ours(details=detail)
    return None


def _with_retry_after(response: R, error: ServiceError) -> R:
    if isinstance(error, RetryLater):
        response["Retry-After"] = str(error.retry_after_secs)
    return response


def error_response(error: ServiceError) -> Response:
    """Render a service error as a DRF response."""
    return _with_retry_after(Response(error.as_body(), status=error.status), error)


def service_error_response(error: ServiceError) -> JsonResponse:
    """Render a service error as a plain Django response (outside DRF's views)."""
    return _with_retry_after(JsonResponse(error.as_body(), status=error.status), error)


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: our errors and DRF's in the contract's shape.

    Unexpected exceptions are re-raised and answered by the failure middleware.
    """
    error = exc if isinstance(exc, ServiceError) else from_drf(exc)
    if error is None:
        return None
    return error_response(error)
