"""Server-Sent Events: ``GET /v2/workspaces/{workspaceId}/events/stream``.

A thin adapter over :class:`events.realtime.stream.EventStream`: it authenticates
(headers, then ``?token=`` / ``?apiKey=``, then the session cookie from this site's own
pages, as the WebSocket does: a browser's ``EventSource`` cannot set headers), checks
the filters and the resume position, and only then answers ``200 text/event-stream``
with the stream as the body. Every refusal before that point is the contract's JSON
error with its status, which an ``EventSource`` takes as final (it does not reconnect).

A path of its own rather than ``Accept: text/event-stream`` on the long poll's path:
an ``EventSource`` cannot choose its ``Accept`` header on every client, proxies and
caches key on the path, the two answers have nothing in common (one JSON body with a
cursor against an endless stream of messages), and the OpenAPI schema describes one
response per path and status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.functional import SimpleLazyObject
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from adapters.http.events_serializers import ErrorSerializer, StreamQuerySerializer
from adapters.http.stream_outlet import SCOPE_KEY
from adapters.http.workspace_view import WorkspaceView, request_context
from events.cloudevents import wants_cloudevents
from events.filters import parse_filters, query_params
from events.positions import Position, parse_position
from events.realtime.stream import TRANSPORT, EventStream
from kernel.caller import CONSUME, Caller
from kernel.context import user_id_var, workspace_id_var
from kernel.errors import PermissionDenied, ValidationError
from workspaces.auth import aauthenticate_scope, session_user

# Query parameters that are not filters.
STREAM_PARAMS = ("lastEventId", "token", "apiKey", "format")
LAST_EVENT_ID = "last-event-id"
STREAM_ERRORS = dict.fromkeys((400, 401, 403, 404, 500, 503), ErrorSerializer)
DESCRIPTION = """\
Server-Sent Events: `retry:` first, then one message per matching event (`id:` the
position to resume from, `data:` the event's JSON, no `event:` line), a `: ping` comment
after `EVENTS_SSE_HEARTBEAT_SECS` of silence, and at most one final `event: error`
message (`data:` the contract's error body: `CursorExpired`, `SlowConsumer`,
`NotAuthenticated`, `PermissionDenied`, `WorkspaceNotFound`, `ServiceUnavailable`)
before the stream ends. Resume with the `Last-Event-ID` header (what `EventSource` sends)
or `lastEventId`; the header wins. Credentials: a JWT or API key in the headers, or
`token` / `apiKey` in the query (browsers), or the session cookie from this site's pages.
Filters are the long poll's."""


class FirstRenderer(BaseContentNegotiation):
    """Errors are JSON whatever the client accepts (an EventSource asks for text/event-stream)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def resume_position(headers: Mapping[str, str], query: Mapping[str, list[str]]) -> Position | None:
    """Where to resume: ``Last-Event-ID`` (an EventSource's reconnect), else ``lastEventId``."""
    header = headers.get(LAST_EVENT_ID, "").strip()
    if header:
        return parse_position(header, "Last-Event-ID")
    raw = (query.get("lastEventId") or [""])[-1]
    return parse_position(raw, "lastEventId") if raw else None


def check_query_length(request: HttpRequest) -> None:
    """The WebSocket's bound on the query string, on the stream's too."""
    limit = settings.EVENTS_WS_MAX_QUERY_CHARS
    if len(request.META.get("QUERY_STRING", "")) > limit:
        raise ValidationError(
            f"the query string is longer than {limit} characters",
            details={"field": "query", "limit": limit},
        )


class StreamAuthentication:
    """Authenticates a stream's request, at the start and at every re-check."""

    def __init__(self, request: HttpRequest, workspace_id: str, query: dict[str, list[str]]):
        self.request = request
        self.workspace_id = workspace_id
        self.headers = {key.lower(): value for key, value in request.headers.items()}
        self.query = query

    async def __call__(self) -> Caller:
        """The caller as the credentials stand now (the session read again)."""
        request = self.request
        scope = {"user": SimpleLazyObject(lambda: session_user(request))}
        return await aauthenticate_scope(scope, self.workspace_id, self.headers, self.query)


class StreamView(WorkspaceView):
    """Server-Sent Events: the workspace's matching events as they come."""

    content_negotiation_class = FirstRenderer

    @extend_schema(
        operation_id="stream_events",
        parameters=[
            StreamQuerySerializer,
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The `id:` of the last message received (wins over lastEventId)",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR, description="The stream of Server-Sent Events"
            ),
            **STREAM_ERRORS,
        },
        summary="Receive the matching events as Server-Sent Events",
        description=DESCRIPTION,
    )
    async def get(self, request: Request, workspace_id: str) -> StreamingHttpResponse:
        django_request = request._request
        workspace_id_var.set(workspace_id)
        query = query_params(request.query_params)
        authenticate = StreamAuthentication(django_request, workspace_id, query)
        self.caller = caller = await authenticate()
        user_id_var.set(caller.user_id)
        if not caller.can(CONSUME):
            raise PermissionDenied(f"this caller may not {CONSUME} in this workspace")
        check_query_length(django_request)
        stream = EventStream(
            workspace_id,
            caller=caller,
            filters=parse_filters(query, ignore=STREAM_PARAMS),
            after=resume_position(authenticate.headers, query),
            context=request_context(request, TRANSPORT),
            authenticate=authenticate,
            outlet=getattr(django_request, "scope", {}).get(SCOPE_KEY),
        )
        stream.subscription.cloudevents = wants_cloudevents(request.query_params.get("format"))
        response = StreamingHttpResponse(stream.messages(), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
