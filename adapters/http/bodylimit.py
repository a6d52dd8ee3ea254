"""Bounded request bodies: 413 ``RequestTooLarge`` before the rest is read.

The largest body the API needs is a full batch of the largest events:
``EVENTS_MAX_BODY_BYTES`` (by default ``EVENTS_MAX_BATCH`` x
``EVENTS_MAX_EVENT_BYTES`` + 64 KiB for the JSON around them). A request that
declares more (``Content-Length``) is answered at once; one that sends more
(chunked, or more than it declared) is answered as soon as the count passes the
bound, before authentication, without reading the rest.

Under uvicorn :class:`BodyLimitMiddleware` counts what the server hands the
application. Daphne (Twisted) reads a whole body before the application sees
it, so :func:`limit_daphne_bodies` makes its request object refuse from the
headers or the first chunk past the bound, and close the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from django.conf import settings

from kernel.context import CORRELATION_HEADER, accept_correlation_id
from kernel.errors import RequestTooLarge

logger = logging.getLogger("events.access")
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyTooLarge(Exception):
    """The body passed the bound while the application was reading it."""


def refusal(limit: int) -> RequestTooLarge:
    """The 413 every server answers."""
    return RequestTooLarge(
        f"the request body is larger than {limit} bytes (EVENTS_MAX_BODY_BYTES: "
        f"{settings.EVENTS_MAX_BATCH} events of at most {settings.EVENTS_MAX_EVENT_BYTES} bytes)"
    )


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length a request declares, if any and readable."""
    for name, value in headers:
        if name.lower() == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def log_refusal(method: str, path: str, correlation_id: str) -> None:
    """The access line of a refused request (it never reaches Django's middlewares)."""
    logger.warning(
        "%s %s 413 (body too large)",
        method,
        path,
        extra={"method": method, "path": path, "status": 413, "correlationId": correlation_id},
    )


class BodyLimitMiddleware:
    """ASGI: refuse a body over ``EVENTS_MAX_BODY_BYTES`` with 413, read or not."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = settings.EVENTS_MAX_BODY_BYTES
        declared = declared_length(scope.get("headers", []))
        if declared is not None and declared > limit:
            await self._refuse(scope, send, limit)
            return
        try:
            await self.app(scope, counting(receive, limit), send)
        except BodyTooLarge:
            await self._refuse(scope, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, limit: int) -> None:
        headers = dict(scope.get("headers", []))
        correlation_id = accept_correlation_id(_text(headers.get(b"x-correlation-id")))
        log_refusal(scope.get("method", ""), scope.get("path", ""), correlation_id)
        body = orjson.dumps(refusal(limit).as_body())
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (CORRELATION_HEADER.lower().encode(), correlation_id.encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def counting(receive: Receive, limit: int) -> Receive:
    """A ``receive`` that raises BodyTooLarge once the body passes ``limit`` bytes."""
    received = 0

    async def receive_counted() -> dict[str, Any]:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge
        return message

    return receive_counted


def raw_refusal(limit: int) -> bytes:
    """The 413 as bytes on the wire, for Daphne's Twisted request (no ASGI there yet)."""
    body = orjson.dumps(refusal(limit).as_body())
    head = (
        "HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class DaphneBodyLimit:
    """What Daphne's request object does with a body: count it, refuse past the bound."""

    def __init__(self, got_length: Callable[..., None], chunk: Callable[..., None]) -> None:
        self.got_length = got_length
        self.chunk = chunk

    def on_length(self, request: Any, length: int | None) -> None:
        """Twisted's ``gotLength``: a declared length over the bound is refused at once."""
        request.events_received = 0
        self.got_length(request, length)
        if length is not None and length > settings.EVENTS_MAX_BODY_BYTES:
            self.refuse(request)

    def on_chunk(self, request: Any, data: bytes) -> None:
        """Twisted's ``handleContentChunk``: refuse as soon as the count passes the bound."""
        if getattr(request, "events_refused", False):
            return
        request.events_received = getattr(request, "events_received", 0) + len(data)
        if request.events_received > settings.EVENTS_MAX_BODY_BYTES:
            self.refuse(request)
            return
        self.chunk(request, data)

    @staticmethod
    def refuse(request: Any) -> None:
        """Answer 413 on the connection and close it; the rest of the body is never read."""
        request.events_refused = True
        # The request line is still the channel's: Twisted gives it to the request at the end.
        method = _text(getattr(request.channel, "_command", None)) or ""
        path = (_text(getattr(request.channel, "_path", None)) or "").partition("?")[0]
        log_refusal(method, path, accept_correlation_id(None))
        request.channel.transport.write(raw_refusal(settings.EVENTS_MAX_BODY_BYTES))
        request.channel.transport.loseConnection()


def limit_daphne_bodies() -> None:
    """Make Daphne's requests refuse a body over the bound (when Daphne is installed)."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # pragma: no cover - Daphne is a dependency
        return
    if isinstance(getattr(WebRequest, "events_body_limit", None), DaphneBodyLimit):
        return
    limit = DaphneBodyLimit(WebRequest.gotLength, WebRequest.handleContentChunk)
    WebRequest.events_body_limit = limit
    WebRequest.gotLength = lambda self, length: limit.on_length(self, length)
    WebRequest.handleContentChunk = lambda self, data: limit.on_chunk(self, data)
