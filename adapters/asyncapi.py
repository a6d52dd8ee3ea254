"""The AsyncAPI 3.0 document of the realtime protocol: ``GET /v2/asyncapi.json``.

Beside ``adapters/http/`` and ``adapters/websocket/`` (which never import each other):
it describes both transports, from their own parameters.

The WebSocket (``/v2/workspaces/{workspaceId}/events``) and the Server-Sent Events
stream (``.../events/stream``), as the OpenAPI schema (``/v2/schema``) describes HTTP.
Written from the definitions the service itself uses: the frames' schemas of
:mod:`events.realtime.protocol` (which the connection checks incoming frames with), the
close codes of :mod:`events.realtime.connection` and :mod:`events.realtime.lifecycle`,
the transport parameters of the adapters. ``scripts/test asyncapi`` has the AsyncAPI
project's own parser check it; ``tests/test_asyncapi.py`` checks every frame the service
sends against it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from adapters.http.stream_views import STREAM_PARAMS
from adapters.websocket.consumer import TRANSPORT_PARAMS
from events.realtime import connection, lifecycle, protocol
from events.realtime.protocol import ERROR_BODY, FILTERS, POSITION, Schema
from kernel.errors import MethodNotAllowed

VERSION = "3.0.0"
WS_CHANNEL = "events"
SSE_CHANNEL = "stream"
WORKSPACE = {"description": "The workspace's id (its slug)"}

# Every close code the service sends, from the constants that send them.
CLOSE_CODES: tuple[tuple[int, str, str], ...] = (
    (
        connection.CLOSE_BAD_REQUEST,
        "ValidationError",
        "The handshake was refused: bad filters, a bad lastEventId, a query string too long",
    ),
    (
        connection.CLOSE_CODES[connection.NotAuthenticated],
        "NotAuthenticated",
        "No credentials, or credentials that do not hold (also when re-checked while open)",
    ),
    (
        connection.CLOSE_CODES[connection.PermissionDenied],
        "PermissionDenied",
        "The caller may not use this workspace (or no longer may consume in it)",
    ),
    (
        connection.CLOSE_CODES[connection.WorkspaceNotFound],
        "WorkspaceNotFound",
        "No such workspace (or it was deleted while the connection was open)",
    ),
    (
        connection.CLOSE_CODES[connection.CursorExpired],
        "CursorExpired",
        "lastEventId is outside the live buffer, or the stream was reset: read the history"
        " (search) and reconnect without it",
    ),
    (
        connection.CLOSE_SLOW_CONSUMER,
        "SlowConsumer",
        "The client read too slowly; reconnect with the last position received",
    ),
    (
        lifecycle.GOING_AWAY,
        "GoingAway",
        "The process stops; reconnect (elsewhere) with the last position received",
    ),
    (
        connection.CLOSE_INTERNAL_ERROR,
        "InternalError",
        "An unexpected failure at the handshake (reported with its correlation id)",
    ),
    (
        connection.CLOSE_TRY_AGAIN_LATER,
        "ServiceUnavailable",
        "A dependency (the broker, the database) did not answer: try again later",
    ),
)

SECURITY_SCHEMES: dict[str, Schema] = {
    "apiKey": {
        "type": "httpApiKey",
        "name": "X-Api-Key",
        "in": "header",
        "description": "A workspace's API key (services)",
    },
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT signed by the platform",
    },
    "apiKeyQuery": {
        "type": "httpApiKey",
        "name": "apiKey",
        "in": "query",
        "description": "The API key in the query, for clients that cannot set headers",
    },
    "tokenQuery": {
        "type": "httpApiKey",
        "name": "token",
        "in": "query",
        "description": "The JWT in the query (a browser's WebSocket or EventSource)",
    },
    "session": {
        "type": "httpApiKey",
        "name": settings.SESSION_COOKIE_NAME,
        "in": "cookie",
        "description": "A signed-in session, from this site's own pages only (same origin)",
    },
}


def _query(params: tuple[str, ...]) -> Schema:
    """The handshake's query string: the transport parameters and the filters (strings)."""
    described = {
        "lastEventId": {**POSITION, "description": "Resume after this position"},
        "token": {"type": "string", "description": "A JWT (see tokenQuery)"},
        "apiKey": {"type": "string", "description": "An API key (see apiKeyQuery)"},
        "format": {
            "type": "string",
            "enum": ["json", "cloudevents"],
            "description": "`cloudevents`: events as CloudEvents 1.0 (docs/CLOUDEVENTS.md)",
        },
    }
    string = {"type": "string", "description": "Repeat the key for OR"}
    return {
        "type": "object",
        "description": FILTERS["description"],
        "properties": {
            **{name: described.get(name, {"type": "string"}) for name in params},
            **dict.fromkeys(FILTERS["properties"], string),
        },
        "patternProperties": dict.fromkeys(FILTERS["patternProperties"], string),
    }


def _message(name: str, summary: str, payload: Schema, **more: Any) -> Schema:
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": payload,
        **more,
    }


def _messages() -> dict[str, Schema]:
    messages = {
        op: _message(op, summary, schema)
        for op, (summary, schema) in protocol.CLIENT_FRAMES.items()
    }
    messages.update(
        {
            op: _message(op, summary, schema)
            for op, (summary, schema) in protocol.SERVER_FRAMES.items()
        }
    )
    messages["streamEvent"] = _message(
        "streamEvent",
        "An event that matches the filters: `id:` its position, `data:` the event's JSON",
        protocol.EVENT_IN_FORMAT,
        headers={
            "type": "object",
            "description": "The message's SSE fields",
            "properties": {"id": POSITION},
        },
    )
    messages["streamError"] = _message(
        "streamError",
        "The stream's last message (`event: error`), the contract's error body as `data:`",
        ERROR_BODY,
        headers={
            "type": "object",
            "description": "The message's SSE fields",
            "properties": {"event": {"const": "error"}},
        },
    )
    return messages


def _refs(channel: str, names: Any) -> dict[str, Schema]:
    return {name: {"$ref": f"#/channels/{channel}/messages/{name}"} for name in names}


def _operation(action: str, channel: str, names: Any, summary: str, **more: Any) -> Schema:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": list(_refs(channel, names).values()),
        **more,
    }


def _operations() -> dict[str, Schema]:
    return {
        "subscribe": _operation(
            "send", WS_CHANNEL, ["subscribe"], protocol.CLIENT_FRAMES["subscribe"][0]
        ),
        "emit": _operation(
            "send",
            WS_CHANNEL,
            ["emit"],
            protocol.CLIENT_FRAMES["emit"][0],
            reply={
                "channel": {"$ref": f"#/channels/{WS_CHANNEL}"},
                "messages": list(_refs(WS_CHANNEL, ["ack", "error"]).values()),
            },
        ),
        "ping": _operation(
            "send",
            WS_CHANNEL,
            ["ping"],
            protocol.CLIENT_FRAMES["ping"][0],
            reply={
                "channel": {"$ref": f"#/channels/{WS_CHANNEL}"},
                "messages": list(_refs(WS_CHANNEL, ["pong"]).values()),
            },
        ),
        "receiveEvents": _operation(
            "receive", WS_CHANNEL, ["event"], "The matching events, in the stream's order"
        ),
        "receiveErrors": _operation(
            "receive", WS_CHANNEL, ["error"], "A refused frame (the connection stays open)"
        ),
        "streamEvents": _operation(
            "receive",
            SSE_CHANNEL,
            ["streamEvent", "streamError"],
            "The matching events as Server-Sent Events, then at most one final error",
            bindings={
                "http": {"method": "GET", "query": _query(STREAM_PARAMS), "bindingVersion": "0.3.0"}
            },
        ),
    }


def _close_codes() -> list[dict[str, Any]]:
    return [{"code": code, "name": name, "description": why} for code, name, why in CLOSE_CODES]


def _ws_description() -> str:
    lines = [
        "The client's WebSocket. Filters and `lastEventId` in the handshake's query string;"
        " events after `lastEventId` still in the live buffer come first, then live ones."
        " Client frames: `subscribe`, `emit`, `ping`. An emit is answered by an `ack` or an"
        " `error` with its `ref` (emits in order), a ping by a `pong`; a refused frame gets an"
        " `error` (with its `ref` where it had one) and the connection stays open; an accepted"
        " `subscribe` gets no answer. Credentials are checked again every"
        f" {settings.EVENTS_WS_RECHECK_SECS:g} s while the connection is open.",
        "",
        "Close codes:",
        "",
    ]
    lines += [f"- `{code}` {name}: {why}" for code, name, why in CLOSE_CODES]
    return "\n".join(lines)


SSE_DESCRIPTION = """\
Server-Sent Events (`GET`, `Accept: text/event-stream`). `retry: <ms>` first, then one \
message per matching event (`id:` its position, `data:` the event's JSON, no `event:` line), \
a `: ping` comment after a while without messages, and at most one final `event: error` \
message before the end (CursorExpired, SlowConsumer, NotAuthenticated, PermissionDenied, \
WorkspaceNotFound, ServiceUnavailable). Resume with `Last-Event-ID` (wins) or `lastEventId`. \
A refusal before the stream starts is the contract's JSON error with its HTTP status."""


@cache
def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document (the same for every request of a process)."""
    security = [{"$ref": f"#/components/securitySchemes/{name}"} for name in SECURITY_SCHEMES]
    messages = _messages()
    ws_names = [*protocol.CLIENT_FRAMES, *protocol.SERVER_FRAMES]
    return {
        "asyncapi": VERSION,
        "info": {
            "title": f"{settings.SPECTACULAR_SETTINGS['TITLE']}: realtime",
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
            "description": (
                "The WebSocket protocol and the Server-Sent Events stream of the events"
                " service. The HTTP API is in the OpenAPI schema at /v2/schema; the whole"
                " outside is docs/PROTOCOL.md in the repository."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "websocket": {
                "host": "localhost:8000",
                "protocol": "ws",
                "description": "This service (wss behind TLS); served, the host asked",
                "security": security,
            },
            "http": {
                "host": "localhost:8000",
                "protocol": "http",
                "description": "This service (https behind TLS); served, the host asked",
                "security": security,
            },
        },
        "channels": {
            WS_CHANNEL: {
                "address": "/v2/workspaces/{workspaceId}/events",
                "title": "WebSocket",
                "description": _ws_description(),
                "servers": [{"$ref": "#/servers/websocket"}],
                "parameters": {"workspaceId": WORKSPACE},
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in ws_names},
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": _query(TRANSPORT_PARAMS),
                        "bindingVersion": "0.1.0",
                    }
                },
                "x-close-codes": _close_codes(),
            },
            SSE_CHANNEL: {
                "address": "/v2/workspaces/{workspaceId}/events/stream",
                "title": "Server-Sent Events",
                "description": SSE_DESCRIPTION,
                "servers": [{"$ref": "#/servers/http"}],
                "parameters": {"workspaceId": WORKSPACE},
                "messages": {
                    name: {"$ref": f"#/components/messages/{name}"}
                    for name in ("streamEvent", "streamError")
                },
            },
        },
        "operations": _operations(),
        "components": {"messages": messages, "securitySchemes": SECURITY_SCHEMES},
    }


View = Callable[[HttpRequest], Any]


def read_only(view: View) -> View:
    """GET and HEAD only; any other method is the contract's JSON 405 (this is under /v2/)."""

    @wraps(view)
    def guarded(request: HttpRequest) -> Any:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{request.method} is not allowed here; use GET")
        return view(request)

    return guarded


@read_only
def asyncapi_view(request: HttpRequest) -> HttpResponse:
    """``/v2/asyncapi.json``: the document, its servers this one as the client reached it."""
    return JsonResponse(
        for_host(request.get_host(), secure=request.is_secure()), json_dumps_params={"indent": 2}
    )


def for_host(host: str, *, secure: bool) -> dict[str, Any]:
    """The document with its servers at ``host`` (``wss`` / ``https`` when ``secure``)."""
    protocols = {"websocket": "wss" if secure else "ws", "http": "https" if secure else "http"}
    described = document()
    servers = {
        name: {**server, "host": host, "protocol": protocols[name]}
        for name, server in described["servers"].items()
    }
    return {**described, "servers": servers}
