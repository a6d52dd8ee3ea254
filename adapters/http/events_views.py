"""HTTP: emit and long poll (``/v2/workspaces/{workspaceId}/events[/poll]``)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from adapters.http.events_serializers import (
    EmitInputSerializer,
    EmitOutputSerializer,
    ErrorSerializer,
    PollOutputSerializer,
    PollQuerySerializer,
)
from adapters.http.history_views import get_events, search_schema
from adapters.http.workspace_view import WorkspaceView, json_body, request_context
from events.event import parse_batch
from events.filters import parse_filters, query_params
from events.positions import parse_position
from events.realtime import longpoll
from events.realtime.publishing import publish
from kernel.caller import CONSUME, EMIT
from kernel.errors import NotFound, ValidationError

ERRORS = dict.fromkeys((400, 401, 403, 404, 413, 500, 503), ErrorSerializer)
POLL_PARAMS = ("cursor", "timeout")


class EventsView(WorkspaceView):
    """Emit events (POST); searching the history (GET) lives in ``adapters.http.history_views``."""

    @extend_schema(
        operation_id="emit_events",
        request=EmitInputSerializer,
        responses={201: EmitOutputSerializer, **ERRORS},
        summary="Emit 1 to 100 events, all or nothing",
    )
    async def post(self, request: Request, workspace_id: str) -> Response:
        caller = await self.authorize(request, workspace_id, EMIT)
        events = parse_batch(json_body(request), max_batch=settings.EVENTS_MAX_BATCH)
        envelopes = await publish(
            workspace_id, events, caller=caller, context=request_context(request)
        )
        return Response({"events": envelopes}, status=201)

    @search_schema
    async def get(self, request: Request, workspace_id: str) -> Response:
        """Search the history; the work is in ``adapters.http.history_views``."""
        return await get_events(self, request, workspace_id)


def parse_timeout(raw: str | None) -> float:
    """The long poll's timeout in seconds: default 25, at most 60."""
    if raw is None or raw == "":
        return float(settings.EVENTS_LONGPOLL_DEFAULT_SECS)
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError("timeout must be a number of seconds") from None
    if not 0 <= value <= settings.EVENTS_LONGPOLL_MAX_SECS:
        raise ValidationError(
            f"timeout must be between 0 and {settings.EVENTS_LONGPOLL_MAX_SECS} seconds"
        )
    return value


class PollView(WorkspaceView):
    """Long poll: wait for the next matching events after a cursor."""

    @extend_schema(
        operation_id="poll_events",
        parameters=[PollQuerySerializer],
        responses={200: PollOutputSerializer, 410: ErrorSerializer, **ERRORS},
        summary="Wait for the next matching events",
    )
    async def get(self, request: Request, workspace_id: str) -> Response:
        caller = await self.authorize(request, workspace_id, CONSUME)
        params = query_params(request.query_params)
        filters = parse_filters(params, ignore=POLL_PARAMS)
        raw_cursor = request.query_params.get("cursor") or None
        cursor = parse_position(raw_cursor) if raw_cursor else None
        timeout = parse_timeout(request.query_params.get("timeout"))
        result = await longpoll.poll(
            workspace_id, caller=caller, filters=filters, cursor=cursor, timeout_secs=timeout
        )
        return Response({"events": result.events, "cursor": result.cursor})


@csrf_exempt
def unknown_path(request: HttpRequest) -> HttpResponse:
    """Any other path under /v2/ or /sys/: the contract's 404 body, not Django's HTML page."""
    raise NotFound(f"no such path: {request.method} {request.path}")
