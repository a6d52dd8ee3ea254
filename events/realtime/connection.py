"""One client's realtime connection, apart from what carries its frames.

The contract's section 3 lives here: open with the caller, its filters and a
``lastEventId``; answer each client frame (``subscribe``, ``emit`` with its
``ref``, ``ping``); answer the emits in order; check the credentials again
while the connection stays open; cut a slow consumer off with 4008; close
with the contract's codes. A WebSocket consumer (``adapters/websocket/``) is
only the transport: it parses the handshake, authenticates, and passes frames
in. Whatever carries the frames implements :class:`Transport`, so this class
is tested with a plain object in place of Channels, as Zulip's
``ClientDescriptor`` or Centrifuge's ``Client`` stand apart from theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

import orjson
from django.conf import settings

from events.cloudevents import wants_cloudevents
from events.event import Envelope, parse_client_event
from events.filters import Filters, parse_filters
from events.frames import text_frame
from events.metrics import CONNECTED, SLOW_CONSUMERS, WEBSOCKET_DELIVERIES, WEBSOCKET_OPENED
from events.positions import Position, parse_position
from events.realtime import idempotency, lifecycle, protocol
from events.realtime.emits import EmitPipeline
from events.realtime.failures import report_failure
from events.realtime.hub import get_hub
from events.realtime.publishing import record_action
from events.realtime.recheck import Recheck
from events.realtime.sockets import DirectSocket
from events.realtime.subscription import (
    QueuedSubscription,
    SlowConsumer,
    SocketSubscription,
    Subscription,
)
from kernel.caller import CONSUME, EMIT, Caller
from kernel.context import RequestContext, correlation_id_var, user_id_var, workspace_id_var
from kernel.errors import (
    CursorExpired,
    NotAuthenticated,
    PermissionDenied,
    ServiceError,
    ServiceUnavailable,
    ValidationError,
    WorkspaceNotFound,
)

logger = logging.getLogger("events.websocket")

TRANSPORT = "websocket"
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
KEY_FIELD = "idempotencyKey"  # the emit frame's idempotency key (events.realtime.idempotency)
REASON_CHARS = 120  # a close frame's reason fits in 123 bytes
# A slow consumer gets this long to read up to its close frame before it is dropped.
SLOW_CLOSE_SECS = 10.0

# Authenticates the connection's credentials again (the periodic re-check).
Authenticate = Callable[[], Awaitable[Caller]]


class Transport(Protocol):
    """What a connection needs from whatever carries its frames."""

    async def accept(self) -> None:
        """Complete the handshake."""

    async def send(self, text: str) -> None:
        """Send one text frame through the server."""

    async def close(self, code: int, reason: str) -> None:
        """Send the close frame with ``code``."""

    def direct_socket(self) -> DirectSocket | None:
        """The client's socket, for prepared frames, where the server allows it (else None)."""


def close_code(error: ServiceError) -> int:
    """The close code the contract gives this error."""
    for kind, code in CLOSE_CODES.items():
        if isinstance(error, kind):
            return code
    return CLOSE_BAD_REQUEST


def error_frame(error: ServiceError, ref: Any = None) -> dict[str, Any]:
    """The contract's error frame."""
    return {"op": "error", "ref": ref, **error.as_body()}


class Connection:
    """One client's connection to one workspace: events out, frames in."""

    def __init__(self, workspace_id: str, transport: Transport, *, context: RequestContext) -> None:
        self.workspace_id = workspace_id
        self.transport = transport
        self.context = context
        self.caller: Caller | None = None
        self.subscription: Subscription | None = None
        self.socket: DirectSocket | None = None
        self.recheck: Recheck | None = None
        self.emits: EmitPipeline | None = None
        self.sender: asyncio.Task | None = None
        self.closer: asyncio.Task | None = None
        self.connected = False
        self.gone = False
        self.started = time.monotonic()
        self.cloudevents = False

    def bind_context(self) -> None:
        """Put this connection's ids in the log context."""
        correlation_id_var.set(self.context.correlation_id)
        workspace_id_var.set(self.workspace_id)
        user_id_var.set(self.caller.user_id if self.caller else None)

    async def open(
        self,
        caller: Caller,
        filters: Mapping[str, Any],
        last_event_id: str | None,
        *,
        authenticate: Authenticate,
        output_format: str | None = None,
    ) -> None:
        """Accept an authenticated client and, if it may consume, subscribe it.

        ``filters`` are the client's (each key a string or a list of strings);
        events after ``last_event_id`` still in the live buffer come first;
        ``output_format`` ``cloudevents`` sends them as CloudEvents.
        A ServiceError means the handshake is refused: pass it to :meth:`refuse`.
        """
        self.caller = caller
        self.bind_context()
        _check_rights(caller, consuming=False)
        parsed = parse_filters(filters)
        self.cloudevents = wants_cloudevents(output_format)
        after = parse_position(last_event_id, "lastEventId") if last_event_id else None
        await self.transport.accept()
        self.connected = True
        self.socket = self.transport.direct_socket()
        self.recheck = Recheck(
            settings.EVENTS_WS_RECHECK_SECS,
            lambda: self._check_again(authenticate),
            workspace_id=self.workspace_id,
        )
        self.recheck.start()
        CONNECTED.labels(transport=TRANSPORT).inc()
        WEBSOCKET_OPENED.labels(writes=self.socket.server if self.socket else "asgi").inc()
        logger.info("websocket connected")
        lifecycle.opened(self)
        if caller.can(CONSUME):
            await self._subscribe(caller, parsed, after)

    async def refuse(self, exc: Exception) -> None:
        """Close a handshake that failed: the contract's code, or 1011 / 1013 (reported)."""
        if isinstance(exc, ServiceError):
            logger.info("websocket refused: %s", exc.message)
            code, reason = close_code(exc), exc.message
        else:
            body = await self._report(exc, "websocket connect")
            unavailable = body["error"] == ServiceUnavailable.code
            code = CLOSE_TRY_AGAIN_LATER if unavailable else CLOSE_INTERNAL_ERROR
            reason = body["message"]
        if not self.connected:
            await self.transport.accept()
        await self.transport.close(code, reason[:REASON_CHARS])

    async def _check_again(self, authenticate: Authenticate) -> bool:
        """Authenticate again; close (4401, 4403, 4404) if the credentials no longer hold."""
        self.bind_context()
        try:
            caller = await authenticate()
            _check_rights(caller, consuming=self.subscription is not None)
        except ServiceError as error:
            logger.info("websocket closed: %s", error.message)
            await self.transport.close(close_code(error), error.message[:REASON_CHARS])
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
        subscription.cloudevents = self.cloudevents
        subscription.on_overflow = self._cut_off
        subscription.on_expire = self._expired
        self.subscription = subscription
        await get_hub().join(self.workspace_id, subscription, after)
        if isinstance(subscription, QueuedSubscription):
            self.sender = asyncio.get_running_loop().create_task(self._send_events(subscription))
        await self._audit("events.subscribed", {"filters": filters.describe()})

    async def _send_events(self, subscription: QueuedSubscription) -> None:
        """Send what the outbox holds, where the socket is out of reach (through the server)."""
        try:
            while True:
                await subscription.wait()
                batch = subscription.take()
                for _, frame in batch:
                    await self.transport.send(subscription.frame_of(frame).text)
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
        self._close_soon(self.transport.close(close_code(error), error.message[:REASON_CHARS]))

    def _close_soon(self, closing: Coroutine[Any, Any, None]) -> None:
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
        await self.transport.close(CLOSE_SLOW_CONSUMER, "SlowConsumer")

    def close_now(self, code: int) -> None:
        """The process stops: send the close frame in this very step, where the socket allows."""
        if self.socket is not None:
            self.socket.close_now(code)

    async def go_away(self, code: int) -> None:
        """The process stops: close with ``code`` and clean up now (the server may not ask)."""
        with contextlib.suppress(Exception):  # a connection already lost has nothing to close
            await self.transport.close(code, "GoingAway")
        await self.disconnect(code)

    async def disconnect(self, code: int) -> None:
        """The client is gone (or going): stop everything this connection started, once."""
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
        if self.connected:
            await self._leave(code)

    async def _leave(self, code: int) -> None:
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

    async def receive(self, data: str | bytes | None) -> None:
        """Handle one client frame; a bad one is answered with an error frame, nothing more."""
        self.bind_context()
        ref = None
        try:
            frame = _parse_frame(data)
            ref = frame.get("ref")
            await self._handle(frame)
        except Exception as exc:
            await self._answer_failure(ref, exc)

    async def _answer_failure(self, ref: Any, exc: Exception) -> None:
        """An error frame: the error's own for ours, the generic one (reported) for the rest."""
        if isinstance(exc, ServiceError):
            await self.send_json(error_frame(exc, ref))
            return
        body = await self._report(exc, "websocket frame")
        await self.send_json({"op": "error", "ref": ref, **body})

    async def _report(self, exc: Exception, where: str) -> dict[str, Any]:
        """Log an unexpected failure, emit its ``error`` event; the client's error body."""
        return await report_failure(
            exc,
            workspace_id=self.workspace_id,
            caller=self.caller,
            context=self.context,
            where=where,
        )

    async def _handle(self, frame: dict[str, Any]) -> None:
        op = protocol.client_op(frame)
        if op == "ping":
            await self.send_json({"op": "pong"})
        elif op == "emit":
            await self._emit(frame)
        else:
            await self._change_filters(frame)

    async def _emit(self, frame: dict[str, Any]) -> None:
        if not self.caller or not self.caller.can(EMIT):
            raise PermissionDenied("this caller may not emit in this workspace")
        key = idempotency.parse_key(frame.get("idempotencyKey"), KEY_FIELD)
        event = parse_client_event(frame.get("event"))
        if self.emits is None:
            self.emits = EmitPipeline(
                self.workspace_id,
                caller=self.caller,
                context=self.context,
                answer=self._answer_emit,
                max_batch=settings.EVENTS_MAX_BATCH,
            )
        await self.emits.put(frame.get("ref"), event, key)

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
        await self._audit("events.subscribed", {"filters": filters.describe()})

    async def send_json(self, content: dict[str, Any]) -> None:
        """Send our own frame (ack, error, pong), straight to the socket where it is in reach."""
        if self.socket is not None:
            self.socket.write(text_frame(orjson.dumps(content)))
            return
        await self.transport.send(orjson.dumps(content).decode())

    async def _audit(self, event_type: str, payload: dict[str, Any]) -> None:
        await record_action(
            self.workspace_id, event_type, payload, caller=self.caller, context=self.context
        )


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
