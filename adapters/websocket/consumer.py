"""The WebSocket endpoint: ``/v2/workspaces/{workspaceId}/events``.

A thin adapter over :class:`events.realtime.connection.Connection`, which
holds the protocol: this parses the handshake (query string, headers),
authenticates, opens the connection, passes client frames in, and carries
the connection's frames and closes as Channels calls (:class:`ChannelsTransport`).
The fast paths past Channels and the servers are beside it, one module each
(``direct_channels``, and ``adapters/servers/``: ``uvicorn``, ``daphne``), behind
``EVENTS_DIRECT_WRITES``.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from adapters.servers import daphne, uvicorn
from adapters.websocket import direct_channels
from events.realtime.connection import TRANSPORT, Connection
from events.realtime.sockets import DirectSocket
from kernel.context import RequestContext, accept_correlation_id
from kernel.errors import ValidationError
from workspaces.auth import aauthenticate_scope

# Handshake parameters that are not filters.
TRANSPORT_PARAMS = ("lastEventId", "token", "apiKey", "format")


def parse_query(raw: bytes) -> dict[str, list[str]]:
    """The handshake's query string, or 4400 when it is longer than the service accepts."""
    limit = settings.EVENTS_WS_MAX_QUERY_CHARS
    if len(raw) > limit:
        raise ValidationError(
            f"the query string is longer than {limit} characters; send filters in a subscribe frame"
        )
    return parse_qs(raw.decode(errors="replace"))


class ChannelsTransport:
    """A connection's frames and closes as the calls of one Channels consumer."""

    def __init__(self, consumer: AsyncWebsocketConsumer) -> None:
        self.consumer = consumer
        self.server_send = direct_channels.server_send(consumer.base_send)

    async def accept(self) -> None:
        await self.consumer.accept()

    async def send(self, text: str) -> None:
        await self.server_send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        await self.consumer.close(code=code, reason=reason)

    def direct_socket(self) -> DirectSocket | None:
        send = self.server_send
        return uvicorn.socket_behind(send) or daphne.socket_behind(send)


class EventsConsumer(AsyncWebsocketConsumer):
    """One client's WebSocket: the handshake, then frames in and out of its Connection."""

    connection: Connection | None = None
    # Events come from the hub, never from a channel layer: no layer subscription per socket.
    channel_layer_alias = "events-consumers-use-no-channel-layer"

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Dispatch a message; client frames skip Channels' per-message ORM clean-up."""
        if direct_channels.skips_orm_cleanup(message):
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def connect(self) -> None:
        workspace_id = self.scope["url_route"]["kwargs"]["workspace_id"]
        headers = {k.decode().lower(): v.decode() for k, v in self.scope.get("headers", [])}
        client = self.scope.get("client") or [None]
        context = RequestContext(
            correlation_id=accept_correlation_id(headers.get("x-correlation-id")),
            transport=TRANSPORT,
            ip=client[0],
        )
        self.connection = connection = Connection(
            workspace_id, ChannelsTransport(self), context=context
        )
        connection.bind_context()
        try:
            query = parse_query(self.scope.get("query_string", b""))
            authenticate = functools.partial(
                aauthenticate_scope, self.scope, workspace_id, headers, query
            )
            caller = await authenticate()
            filters = {k: v for k, v in query.items() if k not in TRANSPORT_PARAMS}
            last_event_id = (query.get("lastEventId") or [""])[-1] or None
            output_format = (query.get("format") or [""])[-1] or None
            await connection.open(
                caller,
                filters,
                last_event_id,
                authenticate=authenticate,
                output_format=output_format,
            )
        except Exception as exc:
            await connection.refuse(exc)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.connection is not None:
            await self.connection.receive(text_data if text_data is not None else bytes_data)

    async def disconnect(self, code: int) -> None:
        if self.connection is not None:
            await self.connection.disconnect(code)
