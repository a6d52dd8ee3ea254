"""One exception hierarchy for every error a client can see.

Each error has a machine-readable ``code`` (the contract's ``error`` field)
and an HTTP ``status``. The same error renders as an HTTP body and as a
WebSocket error frame; anything else becomes the generic internal error in
``events.realtime.failures`` (the one place that handles the unexpected). Rendering them
as HTTP responses is the adapters' work (``adapters.http.errors``).
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error the client caused or must know about."""

    code = "ServiceError"
    status = 400
    default_message = "Request refused"

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def as_body(self) -> dict[str, Any]:
        """Return the contract's error body."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class ValidationError(ServiceError):
    code = "ValidationError"
    status = 400
    default_message = "Invalid request"


class NotAuthenticated(ServiceError):
    code = "NotAuthenticated"
    status = 401
    default_message = "Credentials are missing or invalid"


class PermissionDenied(ServiceError):
    code = "PermissionDenied"
    status = 403
    default_message = "You may not do this in this workspace"


class NotFound(ServiceError):
    code = "NotFound"
    status = 404
    default_message = "Not found"


class WorkspaceNotFound(NotFound):
    code = "WorkspaceNotFound"
    default_message = "Unknown workspace"


class MethodNotAllowed(ServiceError):
    code = "MethodNotAllowed"
    status = 405
    default_message = "Method not allowed"


class CursorExpired(ServiceError):
    code = "CursorExpired"
    status = 410
    default_message = "The cursor is older than the live buffer; catch up through search"


class EventTooLarge(ServiceError):
    code = "EventTooLarge"
    status = 413
    default_message = "Event too large"


class RequestTooLarge(ServiceError):
    code = "RequestTooLarge"
    status = 413
    default_message = "Request body too large"


class UnsupportedMediaType(ServiceError):
    code = "UnsupportedMediaType"
    status = 415
    default_message = "Send JSON"


class RetryLater(ServiceError):
    """An error the client may retry after ``retry_after_secs`` (the ``Retry-After`` header)."""

    default_retry_after_secs = 60

    def __init__(self, message: str | None = None, *, retry_after_secs: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_secs = retry_after_secs or self.default_retry_after_secs


class TooManyRequests(RetryLater):
    code = "TooManyRequests"
    status = 429
    default_message = "Too many requests"


class Conflict(RetryLater):
    """The same request is still being handled (an emit whose ``Idempotency-Key`` is in flight)."""

    code = "Conflict"
    status = 409
    default_message = "The same request is still in progress; retry shortly"
    default_retry_after_secs = 1


class IdempotencyKeyReused(ServiceError):
    code = "IdempotencyKeyReused"
    status = 422
    default_message = "This idempotency key was used for another request"


class NotImplementedByHistory(ServiceError):
    code = "NotImplemented"
    status = 501
    default_message = "Not available with this history"


class ServiceUnavailable(RetryLater):
    code = "ServiceUnavailable"
    status = 503
    default_message = "A dependency is unavailable; try again"
    default_retry_after_secs = 5


class DependencyDown(Exception):
    """A dependency (the broker, the history) did not answer; ``kernel.outages`` tracks it."""

    dependency = "dependency"
