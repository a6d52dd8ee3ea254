"""The base of every HTTP view: the caller, the context, and failures.

Views stay thin: they parse, call :func:`WorkspaceView.authorize`, call plain
functions and format. Errors of ours render in the contract's shape (see
``events.errors``); anything unexpected becomes the generic internal error
here, with its ``error`` event, in one place.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from adrf.views import APIView
from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from rest_framework.request import Request
from rest_framework.response import Response

from events.context import RequestContext, user_id_var, workspace_id_var
from events.errors import EventTooLarge, PermissionDenied, ValidationError
from events.failures import internal_error_body, report_failure
from workspaces.auth import authenticate_request
from workspaces.caller import Caller

logger = logging.getLogger("events.api")
_background: set[asyncio.Task] = set()


def client_ip(request: Request) -> str | None:
    """The caller's address as the server saw it."""
    return request.META.get("REMOTE_ADDR")


def request_context(request: Request, transport: str = "http") -> RequestContext:
    """The context copied into the ``source`` of events this request causes."""
    correlation_id = getattr(request._request, "correlation_id", None) or ""
    return RequestContext(correlation_id=correlation_id, transport=transport, ip=client_ip(request))


def json_body(request: Request) -> Any:
    """Parse the body as JSON, whatever the content type claims."""
    try:
        body = request._request.body
    except RequestDataTooBig:
        raise EventTooLarge("the request body is too large") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the body is not JSON: {exc}") from None


class WorkspaceView(APIView):
    """An async DRF view about one workspace."""

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
        try:
            return super().handle_exception(exc)
        except Exception as unexpected:
            return self._internal_error(unexpected)

    def _internal_error(self, exc: Exception) -> Response:
        request = self.request
        context = request_context(request)
        workspace_id = self.kwargs.get("workspace_id")
        logger.error("unexpected failure in %s", type(self).__name__, exc_info=exc)
        task = asyncio.get_running_loop().create_task(
            report_failure(
                exc,
                workspace_id=workspace_id,
                caller=self.caller,
                context=context,
                where=f"{request.method} {request.path}",
                logged=True,
            )
        )
        _background.add(task)
        task.add_done_callback(_background.discard)
        return Response(internal_error_body(context.correlation_id), status=500)
