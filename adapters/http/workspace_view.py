"""The base of every HTTP view: the caller, the context, and failures.

Views stay thin: they parse, call :func:`WorkspaceView.authorize`, call plain
functions and format. Errors of ours render in the contract's shape (see
``kernel.errors``); anything unexpected becomes the generic internal error
in ``events.realtime.failures``, with its ``error`` event, in one place.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from adrf.views import APIView
from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from adapters.http.auth_schema import WorkspaceAutoSchema
from kernel.caller import Caller
from kernel.context import RequestContext, user_id_var, workspace_id_var
from kernel.errors import PermissionDenied, RequestTooLarge, ValidationError
from workspaces.auth import authenticate_request

logger = logging.getLogger("events.api")


def client_ip(request: Request) -> str | None:
    """The caller's address as the server saw it."""
    return request.META.get("REMOTE_ADDR")


def request_context(request: Request, transport: str = "http") -> RequestContext:
    """The context copied into the ``source`` of events this request causes."""
    correlation_id = getattr(request._request, "correlation_id", None) or ""
    return RequestContext(correlation_id=correlation_id, transport=transport, ip=client_ip(request))


def raw_body(request: Request) -> bytes:
    """The request's body as it came (bounded by ``adapters.http.bodylimit``)."""
    try:
        return request._request.body
    except RequestDataTooBig:
        raise RequestTooLarge("the request body is too large") from None


def json_body(request: Request) -> Any:
    """Parse the body as JSON, whatever the content type claims."""
    body = raw_body(request)
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the body is not JSON: {exc}") from None


class _OwnFormatParameter:
    """DRF's settings, less its ``?format=`` renderer override: ``format`` is the API's own."""

    URL_FORMAT_OVERRIDE = None

    def __getattr__(self, name: str) -> Any:
        return getattr(api_settings, name)


class OwnFormatNegotiation(DefaultContentNegotiation):
    """Content negotiation that leaves ``?format=`` (``format=cloudevents``) to the views."""

    settings = _OwnFormatParameter()  # type: ignore[assignment]  # the same settings, one less


class WorkspaceView(APIView):
    """An async DRF view about one workspace."""

    schema = WorkspaceAutoSchema()
    content_negotiation_class: type[BaseContentNegotiation] = OwnFormatNegotiation
    caller: Caller | None = None

    async def authorize(self, request: Request, workspace_id: str, action: str) -> Caller:
        """Authenticate the caller and check that it may perform ``action``."""
        workspace_id_var.set(workspace_id)
        caller = await sync_to_async(authenticate_request)(request._request, workspace_id)
        self.caller = caller
        user_id_var.set(caller.user_id)
        if not caller.can(action):
            raise PermissionDenied(f"this caller may not {action} in this workspace")
        return caller

    def handle_exception(self, exc: Exception) -> Response:
        # Unexpected exceptions go on to adapters.http.middleware.FailureMiddleware, the one place
        # that logs them, emits their error event and answers the generic 500.
        django_request: Any = getattr(self.request, "_request", self.request)
        django_request.caller = self.caller
        return super().handle_exception(exc)
