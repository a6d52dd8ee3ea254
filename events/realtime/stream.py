"""Server-Sent Events: one client's stream of events over one long HTTP response.

The stream is a subscription of the hub like a long poll's (a
:class:`QueuedSubscription`, bounded), read by the response body itself:
:meth:`EventStream.messages` yields the bytes the server sends, in order:

- ``retry: <ms>`` once, at the start (how long a client waits to reconnect), sent once
  the stream is subscribed: whatever is emitted after a client read it reaches it;
- each event as one message, ``id:`` its position (``<epoch>:<event id>``, what the
  client resumes from with ``Last-Event-ID``) and ``data:`` the event's JSON, the same
  bytes for every stream of the process (:attr:`events.frames.EventFrame.sse`);
  no ``event:`` line, so a browser's ``onmessage`` gets them;
- ``: ping`` after ``EVENTS_SSE_HEARTBEAT_SECS`` without a message, so that proxies
  keep an idle stream open;
- at most one ``event: error`` message, the contract's error body as ``data:``, and
  then the end of the response: a position outside the live buffer or a stream reset
  (``CursorExpired``), a slow consumer (``SlowConsumer``), credentials that no longer
  hold (``NotAuthenticated``, ``PermissionDenied``, ``WorkspaceNotFound``), a broker
  that does not answer (``ServiceUnavailable``).

The adapter (``adapters/http/stream_views.py``) authenticates and parses before the
response starts, so those refusals are plain 4xx answers; everything here happens
after the ``200``. A stop of the process ends every stream (:mod:`lifecycle`); the
client reconnects, elsewhere, with its ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import orjson
from django.conf import settings

from events.filters import Filters
from events.frames import Delivery
from events.metrics import CONNECTED, DELIVERED, SLOW_CONSUMERS
from events.positions import Position
from events.realtime import lifecycle
from events.realtime.hub import get_hub
from events.realtime.publishing import record_action
from events.realtime.recheck import Recheck
from events.realtime.subscription import QueuedSubscription, SlowConsumer
from kernel import outages
from kernel.caller import CONSUME, Caller
from kernel.context import RequestContext, correlation_id_var, user_id_var, workspace_id_var
from kernel.errors import PermissionDenied, ServiceError, ServiceUnavailable

logger = logging.getLogger("events.sse")

TRANSPORT = "sse"
PING = b": ping\n\n"
# A slow consumer that does not read its last message within this long is dropped.
SLOW_CLOSE_SECS = 10.0
# An end of the stream with no error to tell (a stop): ``go_away`` waits this long for it.
END_WAIT_SECS = 2.0

# Authenticates the stream's credentials again (the periodic and the immediate re-check).
Authenticate = Callable[[], Awaitable[Caller]]


class SlowStream(ServiceError):
    """The client did not read its events as fast as they came."""

    code = "SlowConsumer"
    status = 503
    default_message = "The client read too slowly and was disconnected; resume with Last-Event-ID"


class Outlet(Protocol):
    """The client's connection as far as a stream needs it (None where out of reach)."""

    def buffered(self) -> int:
        """Bytes written but not yet taken by the client's TCP connection."""

    def abort(self) -> None:
        """Drop the connection at once."""


def retry_message(retry_ms: int) -> bytes:
    """The ``retry:`` field that opens every stream."""
    return b"retry: %d\n\n" % retry_ms


def error_message(error: ServiceError) -> bytes:
    """The final ``event: error`` message: the contract's error body as ``data:``."""
    return b"event: error\ndata: " + orjson.dumps(error.as_body()) + b"\n\n"


class _StreamSubscription(QueuedSubscription):
    """A stream's subscription, which its owner can wake when the stream must end."""

    def wake(self) -> None:
        """Let a waiting ``wait`` return, with nothing new."""
        self._ready.set()


class EventStream:
    """One client's stream of one workspace's events."""

    def __init__(
        self,
        workspace_id: str,
        *,
        caller: Caller,
        filters: Filters,
        after: Position | None,
        context: RequestContext,
        authenticate: Authenticate,
        outlet: Outlet | None = None,
    ) -> None:
        self.workspace_id = workspace_id
        self.caller = caller
        self.after = after
        self.context = context
        self.authenticate = authenticate
        self.outlet = outlet
        self.subscription = _StreamSubscription(
            caller, filters, last_id="", outbox_max=settings.EVENTS_SSE_OUTBOX_MAX
        )
        self.subscription.on_overflow = self._overflowed
        self.ending: ServiceError | None = None
        self.stopping = False
        self.joined = False
        self.finished = asyncio.Event()
        self.recheck: Recheck | None = None
        self.started = time.monotonic()

    def bind_context(self) -> None:
        """Put this stream's ids in the log context."""
        correlation_id_var.set(self.context.correlation_id)
        workspace_id_var.set(self.workspace_id)
        user_id_var.set(self.caller.user_id)

    async def messages(self) -> AsyncIterator[bytes]:
        """The response's body, message by message, until the stream ends."""
        self.bind_context()
        lifecycle.opened(self)
        CONNECTED.labels(transport=TRANSPORT).inc()
        try:
            if lifecycle.stopping():  # came in during a stop (a kept-alive connection)
                yield retry_message(settings.EVENTS_SSE_RETRY_MS)
                return
            await self._join()  # first: once a client has the ``retry:``, it is subscribed
            yield retry_message(settings.EVENTS_SSE_RETRY_MS)
            if self.ending is None:
                async for chunk in self._events():
                    yield chunk
            if self.ending is not None:
                yield error_message(self.ending)
        finally:
            await self._close()

    async def _join(self) -> None:
        try:
            await get_hub().join(self.workspace_id, self.subscription, self.after)
        except ServiceError as error:
            logger.info("event stream refused: %s", error.message)
            self.ending = error
            return
        except Exception as exc:
            if outages.dependency_of(exc) != outages.BROKER:
                raise
            outages.failed(outages.BROKER, exc, "an event stream's start")
            self.ending = ServiceUnavailable()
            return
        self.joined = True
        self.recheck = Recheck(
            settings.EVENTS_WS_RECHECK_SECS, self._check_again, workspace_id=self.workspace_id
        )
        self.recheck.start()
        logger.info("event stream opened")
        filters = self.subscription.filters.describe()
        await self._audit("events.subscribed", {"filters": filters})

    async def _events(self) -> AsyncIterator[bytes]:
        """Events, heartbeats, until something ends the stream (``ending`` or a stop)."""
        subscription = self.subscription
        heartbeat = float(settings.EVENTS_SSE_HEARTBEAT_SECS)
        while self.ending is None and not self.stopping:
            if not await subscription.wait(heartbeat):
                yield PING
                continue
            try:
                batch = subscription.take()
            except SlowConsumer:
                self.ending = SlowStream()
                return
            except ServiceError as error:  # CursorExpired: the stream was reset or trimmed
                self.ending = error
                return
            if batch:
                yield self._encode(batch)
                self._check_buffer()

    def _encode(self, batch: list[Delivery]) -> bytes:
        self.subscription.delivered += len(batch)
        DELIVERED.labels(transport=TRANSPORT).inc(len(batch))
        return b"".join(self.subscription.frame_of(frame).sse for _, frame in batch)

    def _check_buffer(self) -> None:
        """A server that never makes a writer wait (Daphne) buffers: bound it here."""
        if (
            self.outlet is not None
            and self.outlet.buffered() > settings.EVENTS_SSE_BUFFER_MAX_BYTES
        ):
            self.subscription.overflow()
            self.ending = SlowStream()

    def _overflowed(self) -> None:
        """Cut a slow consumer off: its last message waits behind what it has not read."""
        SLOW_CONSUMERS.inc()
        logger.warning("slow consumer disconnected")
        self.subscription.wake()
        asyncio.get_running_loop().call_later(SLOW_CLOSE_SECS, self._drop_if_stuck)

    def _drop_if_stuck(self) -> None:
        if self.outlet is None:
            return
        if not self.finished.is_set() or self.outlet.buffered() > 0:
            self.outlet.abort()

    async def _check_again(self) -> bool:
        """Authenticate again; end the stream with the error if the credentials no longer hold."""
        self.bind_context()
        try:
            caller = await self.authenticate()
            if not caller.can(CONSUME):
                raise PermissionDenied("this caller may no longer consume in this workspace")
        except ServiceError as error:
            logger.info("event stream closed: %s", error.message)
            self.ending = error
            self.subscription.wake()
            return False
        self.caller = self.subscription.caller = caller
        return True

    def close_now(self, code: int) -> None:
        """Nothing to send before the event loop runs: a stream ends in ``go_away``."""

    async def go_away(self, code: int) -> None:
        """The process stops: end the stream (the client reconnects with Last-Event-ID)."""
        self.stopping = True
        self.subscription.wake()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.finished.wait(), END_WAIT_SECS)

    async def _close(self) -> None:
        """The stream ended (or the client went away): leave the hub, once."""
        if self.finished.is_set():
            return
        lifecycle.closed(self)
        CONNECTED.labels(transport=TRANSPORT).dec()
        if self.recheck is not None:
            self.recheck.stop()
        try:
            if self.joined:
                await get_hub().leave(self.workspace_id, self.subscription)
                reason = self.ending.code if self.ending else "closed"
                await self._audit("events.unsubscribed", {"reason": reason})
                logger.info("event stream closed", extra=self._summary(reason))
        finally:
            self.finished.set()

    def _summary(self, reason: str) -> dict[str, Any]:
        return {
            "reason": reason,
            "durationMs": round((time.monotonic() - self.started) * 1000),
            "delivered": self.subscription.delivered,
        }

    async def _audit(self, event_type: str, payload: dict[str, Any]) -> None:
        await record_action(
            self.workspace_id, event_type, payload, caller=self.caller, context=self.context
        )
