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

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.servers import daphne, uvicorn
from adapters.servers.daphne import DaphneOutlet
from adapters.servers.uvicorn import UvicornOutlet

STREAM_SUFFIX = "/events/stream"
SCOPE_KEY = "events.outlet"


Outlet = UvicornOutlet | DaphneOutlet


def outlet_of(send: Any) -> Outlet | None:
    """The connection behind an ASGI ``send``, or None for a server we do not know (or a
    version the fast path was not written for: adapters/servers/)."""
    return uvicorn.outlet_behind(send) or daphne.outlet_behind(send)


class OutletMiddleware:
    """ASGI: an event stream's request carries its connection in the scope."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").endswith(STREAM_SUFFIX):
            # The servers' private attributes, like the WebSocket's: pinned, same switch.
            scope[SCOPE_KEY] = outlet_of(send)
        await self.app(scope, receive, send)
