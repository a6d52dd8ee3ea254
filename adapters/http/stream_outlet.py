"""The client's connection behind an event stream's ASGI ``send``, where the server is one we know.

A stream must bound what waits for a slow client. uvicorn makes the writer wait
(``send`` blocks above its transport's high-water mark), so the stream's outbox fills
and the subscription overflows; Daphne (Twisted) buffers whatever is written and
never makes a writer wait, so the stream looks at the transport's unsent bytes
itself. Both need to drop a client that stopped reading altogether. Django's request
does not carry ``send``: :class:`OutletMiddleware` puts the connection in the scope of
the stream's requests (``scope["events.outlet"]``), for the view to hand to
:class:`events.realtime.stream.EventStream`. Another server, or
``EVENTS_DIRECT_WRITES=false``, gives None: the outbox's bound still holds, without the
byte bound and the drop.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

STREAM_SUFFIX = "/events/stream"
SCOPE_KEY = "events.outlet"


class UvicornOutlet:
    """uvicorn's HTTP protocol (httptools or h11): an asyncio transport."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def buffered(self) -> int:
        return int(self.transport.get_write_buffer_size())

    def abort(self) -> None:
        self.transport.abort()


class DaphneOutlet:
    """Daphne's HTTP request (Twisted): its channel's TCP transport."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def buffered(self) -> int:
        transport = self.transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def abort(self) -> None:
        self.transport.abortConnection()


def outlet_of(send: Any) -> UvicornOutlet | DaphneOutlet | None:
    """The connection behind an ASGI ``send``, or None for a server we do not know."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if hasattr(transport, "get_write_buffer_size") and hasattr(transport, "abort"):
        return UvicornOutlet(transport)
    if isinstance(send, functools.partial) and send.args:
        transport = getattr(send.args[0], "transport", None)
        if hasattr(transport, "_tempDataLen") and hasattr(transport, "abortConnection"):
            return DaphneOutlet(transport)
    return None


class OutletMiddleware:
    """ASGI: an event stream's request carries its connection in the scope."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").endswith(STREAM_SUFFIX):
            # The servers' private attributes, like the WebSocket's fast paths: same switch.
            scope[SCOPE_KEY] = outlet_of(send) if settings.EVENTS_DIRECT_WRITES else None
        await self.app(scope, receive, send)
