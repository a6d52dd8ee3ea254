"""HTTP: emit and long poll (``/v2/workspaces/{workspaceId}/events[/poll]``)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from adapters.http.cloudevents_parsers import PARSERS, emitted_events
from adapters.http.events_serializers import (
    EmitInputSerializer,
    EmitOutputSerializer,
    ErrorSerializer,
    PollOutputSerializer,
    PollQuerySerializer,
)
from adapters.http.history_views import get_events, search_schema
from adapters.http.workspace_view import WorkspaceView, request_context
from events.cloudevents import to_cloudevent, wants_cloudevents
from events.filters import parse_filters, query_params
from events.positions import parse_position
from events.realtime import idempotency, longpoll
from kernel.caller import CONSUME, EMIT
from kernel.errors import NotFound, ValidationError

ERRORS = dict.fromkeys((400, 401, 403, 404, 413, 500, 503), ErrorSerializer)
POLL_PARAMS = ("cursor", "timeout", "format")
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": idempotency.MAX_KEY_CHARS,
        "pattern": "^[!-~]+$",
    },
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes a retry safe: a retry with the same key, by the same caller in the same "
        f"workspace, within EVENTS_IDEMPOTENCY_SECS (default 24 h), gets the first answer "
        f"(same status, same body, same event ids, and `{REPLAYED_HEADER}: true`) and "
        "publishes nothing. The same key with other events: 422 IdempotencyKeyReused; "
        "while the first request is still in progress: 409 Conflict (Retry-After: 1). "
        "A request that failed keeps nothing: its retry publishes."
    ),
    examples=[OpenApiExample("a UUID", value="5f0c6a8e-1b7d-4c9e-9a51-2d3e4f5a6b7c")],
)

CLOUDEVENTS_EMIT = (
    'The body is `{"events": [...]}` (`application/json`), or CloudEvents 1.0 '
    "(docs/CLOUDEVENTS.md): one structured event (`Content-Type: application/cloudevents+json`), "
    "a batch (`application/cloudevents-batch+json`, a JSON array), or binary mode (`ce-*` "
    "headers; the body is `data`, its Content-Type the `datacontenttype`). An invalid CloudEvent "
    "is 400 ValidationError with the attribute in `details.attribute`."
)


class EventsView(WorkspaceView):
    """Emit events (POST); searching the history (GET) lives in ``adapters.http.history_views``."""

    parser_classes = PARSERS

    @extend_schema(
        operation_id="emit_events",
        request={"application/json": EmitInputSerializer},
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: EmitOutputSerializer,
            409: ErrorSerializer,
            422: ErrorSerializer,
            **ERRORS,
        },
        summary="Emit 1 to 100 events, all or nothing",
        description=CLOUDEVENTS_EMIT,
    )
    async def post(self, request: Request, workspace_id: str) -> Response:
        caller = await self.authorize(request, workspace_id, EMIT)
        key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
        events = emitted_events(request, max_batch=settings.EVENTS_MAX_BATCH)
        emitted = await idempotency.publish_once(
            workspace_id, events, caller=caller, context=request_context(request), key=key
        )
        headers = {REPLAYED_HEADER: "true"} if emitted.replayed else None
        return Response({"events": emitted.envelopes}, status=201, headers=headers)

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
        description="`format=cloudevents`: the events as structured CloudEvents 1.0 "
        "(docs/CLOUDEVENTS.md) instead of the service's JSON.",
    )
    async def get(self, request: Request, workspace_id: str) -> Response:
        caller = await self.authorize(request, workspace_id, CONSUME)
        cloudevents = wants_cloudevents(request.query_params.get("format"))
        params = query_params(request.query_params)
        filters = parse_filters(params, ignore=POLL_PARAMS)
        raw_cursor = request.query_params.get("cursor") or None
        cursor = parse_position(raw_cursor) if raw_cursor else None
        timeout = parse_timeout(request.query_params.get("timeout"))
        result = await longpoll.poll(
            workspace_id, caller=caller, filters=filters, cursor=cursor, timeout_secs=timeout
        )
        events = [to_cloudevent(e) for e in result.events] if cloudevents else result.events
        return Response({"events": events, "cursor": result.cursor})


@csrf_exempt
def unknown_path(request: HttpRequest) -> HttpResponse:
    """Any other path under /v2/ or /sys/: the contract's 404 body, not Django's HTML page."""
    raise NotFound(f"no such path: {request.method} {request.path}")
