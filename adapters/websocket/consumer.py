"""The WebSocket endpoint: ``/v2/workspaces/{workspaceId}/events``.

A thin adapter: it authenticates the handshake, joins the hub with the
initial filters (and ``lastEventId``), sends what the subscription queues,
and turns client frames into calls of plain functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.sessions import InstanceSessionWrapper
from django.conf import settings

from events.event import Envelope, parse_client_event
from events.filters import Filters, parse_filters
from events.frames import text_frame
from events.metrics import CONNECTED, SLOW_CONSUMERS, WEBSOCKET_DELIVERIES
from events.positions import Position, parse_position
from events.realtime import lifecycle
from events.realtime.emits import EmitPipeline
from events.realtime.failures import report_failure
from events.realtime.hub import get_hub
from events.realtime.publishing import record_action
from events.realtime.recheck import Recheck
from events.realtime.sockets import DirectSocket, direct_socket
from events.realtime.subscription import (
    QueuedSubscription,
    SlowConsumer,
    SocketSubscription,
    Subscription,
)
from kernel.caller import CONSUME, EMIT, Caller
from kernel.context import (
    RequestContext,
    accept_correlation_id,
    correlation_id_var,
    user_id_var,
    workspace_id_var,
)
from kernel.errors import (
    CursorExpired,
    NotAuthenticated,
    PermissionDenied,
    ServiceError,
    ServiceUnavailable,
    ValidationError,
    WorkspaceNotFound,
)
from workspaces.auth import aauthenticate_scope

logger = logging.getLogger("events.websocket")

TRANSPORT = "websocket"
TRANSPORT_PARAMS = ("lastEventId", "token", "apiKey")
CLOSE_CODES: dict[type[ServiceError], int] = {
    NotAuthenticated: 4401,
    PermissionDenied: 4403,
    WorkspaceNotFound: 4404,
    CursorExpired: 4410,
}
CLOSE_BAD_REQUEST = 4400
CLOSE_SLOW_CONSUMER = 4008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013  # a dependency did not answer (RFC 6455's "Try Again Later")
# A slow consumer gets this long to read up to its close frame before it is dropped.
SLOW_CLOSE_SECS = 10.0
# Frames whose handlers never touch the ORM: no database clean-up thread hop per frame.
ORM_FREE_MESSAGES = frozenset({"websocket.receive"})


def close_code(error: ServiceError) -> int:
    """The close code that refuses a handshake for this error."""
    for kind, code in CLOSE_CODES.items():
        if isinstance(error, kind):
            return code
    return CLOSE_BAD_REQUEST


def parse_query(raw: bytes) -> dict[str, list[str]]:
    """The handshake's query string, or 4400 when it is longer than the service accepts."""
    limit = settings.EVENTS_WS_MAX_QUERY_CHARS
    if len(raw) > limit:
        raise ValidationError(
            f"the query string is longer than {limit} characters; send filters in a subscribe frame"
        )
    return parse_qs(raw.decode(errors="replace"))


def error_frame(error: ServiceError, ref: Any = None) -> dict[str, Any]:
    """The contract's error frame."""
    return {"op": "error", "ref": ref, **error.as_body()}


class EventsConsumer(AsyncWebsocketConsumer):
    """One client's WebSocket: live events out, emit and subscribe frames in."""

    caller: Caller | None = None
    subscription: Subscription | None = None
    sender: asyncio.Task | None = None
    closer: asyncio.Task | None = None
    socket: DirectSocket | None = None
    recheck: Recheck | None = None
    emits: EmitPipeline | None = None
    connected = False
    gone = False
    # Events come from the hub, never from a channel layer: no layer subscription per socket.
    channel_layer_alias = "events-consumers-use-no-channel-layer"

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Dispatch a message; client frames skip Channels' per-message ORM clean-up.

        Channels runs ``close_old_connections`` in the sync thread before every
        message: a thread hop that, under load, waits for the GIL and delayed
        each emit by milliseconds. Frame handlers only use the broker.
        """
        if message["type"] in ORM_FREE_MESSAGES:
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def connect(self) -> None:
        self.workspace_id = self.scope["url_route"]["kwargs"]["workspace_id"]
        self.started = time.monotonic()
        headers = {k.decode().lower(): v.decode() for k, v in self.scope.get("headers", [])}
        self.query: dict[str, list[str]] = {}
        client = self.scope.get("client") or [None]
        self.context = RequestContext(
            correlation_id=accept_correlation_id(headers.get("x-correlation-id")),
            transport=TRANSPORT,
            ip=client[0],
        )
        self._bind_context()
        try:
            await self._open(headers)
        except ServiceError as error:
            logger.info("websocket refused: %s", error.message)
            await self._refuse(close_code(error), error.message)
        except Exception as exc:
            body = await report_failure(
                exc,
                workspace_id=self.workspace_id,
                caller=self.caller,
                context=self.context,
                where="websocket connect",
            )
            unavailable = body["error"] == ServiceUnavailable.code
            code = CLOSE_TRY_AGAIN_LATER if unavailable else CLOSE_INTERNAL_ERROR
            await self._refuse(code, body["message"])

    async def _refuse(self, code: int, reason: str) -> None:
        if not self.connected:
            await self.accept()
        await self.close(code=code, reason=reason[:120])

    def _bind_context(self) -> None:
        correlation_id_var.set(self.context.correlation_id)
        workspace_id_var.set(self.workspace_id)
        user_id_var.set(self.caller.user_id if self.caller else None)

    async def _open(self, headers: dict[str, str]) -> None:
        self.query = parse_query(self.scope.get("query_string", b""))
        self.caller = await aauthenticate_scope(self.scope, self.workspace_id, headers, self.query)
        self._bind_context()
        _check_rights(self.caller, consuming=False)
        filters = parse_filters(self.query, ignore=TRANSPORT_PARAMS)
        last_event_id = (self.query.get("lastEventId") or [""])[-1] or None
        after = parse_position(last_event_id, "lastEventId") if last_event_id else None
        await self.accept()
        self.connected = True
        self.socket = direct_socket(_frame_sender(self.base_send))
        self.recheck = Recheck(
            settings.EVENTS_WS_RECHECK_SECS, functools.partial(self._check_again, headers)
        )
        self.recheck.start()
        CONNECTED.labels(transport=TRANSPORT).inc()
        logger.info("websocket connected")
        lifecycle.opened(self)
        if self.caller.can(CONSUME):
            await self._subscribe(self.caller, filters, after)

    async def _check_again(self, headers: dict[str, str]) -> bool:
        """Authenticate again; close (4401, 4403, 4404) if the credentials no longer hold."""
        self._bind_context()
        try:
            caller = await aauthenticate_scope(self.scope, self.workspace_id, headers, self.query)
            _check_rights(caller, consuming=self.subscription is not None)
        except ServiceError as error:
            logger.info("websocket closed: %s", error.message)
            await self.close(code=close_code(error), reason=error.message[:120])
            return False
        self.caller = caller
        for holder in (self.subscription, self.emits):
            if holder is not None:
                holder.caller = caller
        return True

    async def _subscribe(self, caller: Caller, filters: Filters, after: Position | None) -> None:
        subscription: Subscription
        if self.socket is not None:
            subscription = SocketSubscription(
                caller, filters, socket=self.socket, buffer_max=settings.EVENTS_WS_BUFFER_MAX_BYTES
            )
        else:
            subscription = QueuedSubscription(
                caller, filters, last_id="", outbox_max=settings.EVENTS_WS_OUTBOX_MAX
            )
        subscription.on_overflow = self._cut_off
        subscription.on_expire = self._expired
        self.subscription = subscription
        await get_hub().join(self.workspace_id, subscription, after)
        if isinstance(subscription, QueuedSubscription):
            self.sender = asyncio.get_running_loop().create_task(
                self._send_events(subscription, _frame_sender(self.base_send))
            )
        await self._audit("events.subscribed", {"filters": _describe(filters)})

    async def _send_events(self, subscription: QueuedSubscription, send: Any) -> None:
        """Send what the outbox holds, where the socket is out of reach (ASGI messages)."""
        try:
            while True:
                await subscription.wait()
                batch = subscription.take()
                for _, frame in batch:
                    await send({"type": "websocket.send", "text": frame.text})
                subscription.delivered += len(batch)
                WEBSOCKET_DELIVERIES.add(batch)
        except SlowConsumer:
            self._cut_off()
        except CursorExpired as error:
            self._expired(error)

    def _cut_off(self) -> None:
        """Disconnect a slow consumer with 4008, once, even while a send is blocked.

        Under a server with backpressure (uvicorn) the sender waits in ``send``
        while the outbox fills; the overflow calls this, which stops the sender.
        """
        self._close_soon(self._close_slow())

    def _expired(self, error: CursorExpired) -> None:
        """Close with 4410 when the stream was reset or trimmed past this subscriber."""
        logger.info("websocket closed: %s", error.message)
        self._close_soon(self.close(code=close_code(error), reason=error.message[:120]))

    def _close_soon(self, closing: Any) -> None:
        if self.closer is not None:
            closing.close()
            return
        if self.sender is not None and self.sender is not asyncio.current_task():
            self.sender.cancel()
        self.closer = asyncio.get_running_loop().create_task(closing)

    async def _close_slow(self) -> None:
        SLOW_CONSUMERS.inc()
        logger.warning("slow consumer disconnected")
        if self.socket is not None:
            # The close frame waits behind what the client has not read: it gets a while.
            self.socket.hold_close(SLOW_CLOSE_SECS)
            asyncio.get_running_loop().call_later(SLOW_CLOSE_SECS, self.socket.abort)
        await self.close(code=CLOSE_SLOW_CONSUMER, reason="SlowConsumer")

    def close_now(self, code: int) -> None:
        """The process stops: send the close frame in this very step, where the socket allows."""
        if self.socket is not None:
            self.socket.close_now(code)

    async def go_away(self, code: int) -> None:
        """The process stops: close with ``code`` and clean up now (the server may not ask)."""
        with contextlib.suppress(Exception):  # a connection already lost has nothing to close
            await self.close(code=code, reason="GoingAway")
        await self.disconnect(code)

    async def disconnect(self, code: int) -> None:
        if self.gone:
            return
        self.gone = True
        lifecycle.closed(self)
        if self.recheck is not None:
            self.recheck.stop()
        if self.emits is not None:
            await self.emits.close()
        for task in (self.sender, self.closer):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                # A close that met the lost connection fails (ClientDisconnected): it is moot.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if not self.connected:
            return
        CONNECTED.labels(transport=TRANSPORT).dec()
        if self.subscription:
            await get_hub().leave(self.workspace_id, self.subscription)
            await self._audit("events.unsubscribed", {"code": code})
        logger.info(
            "websocket disconnected",
            extra={
                "code": code,
                "durationMs": round((time.monotonic() - self.started) * 1000),
                "delivered": self.subscription.delivered if self.subscription else 0,
            },
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self._bind_context()
        ref = None
        try:
            frame = _parse_frame(text_data if text_data is not None else bytes_data)
            ref = frame.get("ref")
            await self._handle(frame)
        except Exception as exc:
            await self._answer_failure(ref, exc)

    async def _answer_failure(self, ref: Any, exc: Exception) -> None:
        """An error frame: the error's own for ours, the generic one (reported) for the rest."""
        if isinstance(exc, ServiceError):
            await self.send_json(error_frame(exc, ref))
            return
        body = await report_failure(
            exc,
            workspace_id=self.workspace_id,
            caller=self.caller,
            context=self.context,
            where="websocket frame",
        )
        await self.send_json({"op": "error", "ref": ref, **body})

    async def _handle(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == "ping":
            await self.send_json({"op": "pong"})
        elif op == "emit":
            await self._emit(frame)
        elif op == "subscribe":
            await self._change_filters(frame)
        else:
            raise ValidationError(
                f"unknown op {op!r}; use subscribe, emit or ping", details={"field": "op"}
            )

    async def _emit(self, frame: dict[str, Any]) -> None:
        if not self.caller or not self.caller.can(EMIT):
            raise PermissionDenied("this caller may not emit in this workspace")
        event = parse_client_event(frame.get("event"))
        if self.emits is None:
            self.emits = EmitPipeline(
                self.workspace_id,
                caller=self.caller,
                context=self.context,
                answer=self._answer_emit,
                max_batch=settings.EVENTS_MAX_BATCH,
            )
        await self.emits.put(frame.get("ref"), event)

    async def _answer_emit(
        self, ref: Any, envelope: Envelope | None, exc: Exception | None
    ) -> None:
        if envelope is not None:
            await self.send_json({"op": "ack", "ref": ref, "event": envelope})
        elif exc is not None:
            await self._answer_failure(ref, exc)

    async def _change_filters(self, frame: dict[str, Any]) -> None:
        if not self.caller or not self.caller.can(CONSUME) or self.subscription is None:
            raise PermissionDenied("this caller may not consume in this workspace")
        filters = parse_filters(frame.get("filters") or {})
        self.subscription.change_filters(filters)
        await self._audit("events.subscribed", {"filters": _describe(filters)})

    async def send_json(self, content: dict[str, Any]) -> None:
        """Send our own frame (ack, error, pong), straight to the socket where it is in reach."""
        if self.socket is not None:
            self.socket.write(text_frame(orjson.dumps(content)))
            return
        await self.send(text_data=orjson.dumps(content).decode())

    async def _audit(self, event_type: str, payload: dict[str, Any]) -> None:
        await record_action(
            self.workspace_id, event_type, payload, caller=self.caller, context=self.context
        )


def _frame_sender(send: Any) -> Any:
    """The server's own send for event frames, below the session middleware.

    The session wrapper inspects the session on every message to save it on
    ``websocket.accept``; event frames never need it, and that cost per delivery
    showed in profiles.
    """
    wrapper = getattr(send, "__self__", None)
    if isinstance(wrapper, InstanceSessionWrapper):
        return wrapper.real_send
    return send


def _check_rights(caller: Caller, *, consuming: bool) -> None:
    """Refuse a caller that may no longer use this connection as it is used."""
    if not (caller.can(CONSUME) or caller.can(EMIT)):
        raise PermissionDenied("this caller may neither consume nor emit")
    if consuming and not caller.can(CONSUME):
        raise PermissionDenied("this caller may no longer consume in this workspace")


def _parse_frame(data: str | bytes | None) -> dict[str, Any]:
    try:
        frame = orjson.loads(data or b"")
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the frame is not JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise ValidationError('a frame is a JSON object such as {"op": "ping"}')
    return frame


def _describe(filters: Filters) -> dict[str, Any]:
    described: dict[str, Any] = dict(filters.fields)
    if filters.types:
        described["types"] = list(filters.types)
    if filters.texts:
        described["text"] = list(filters.texts)
    return described
