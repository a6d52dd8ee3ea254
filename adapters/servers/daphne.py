"""Daphne, past its API: the WebSocket's direct writes and the event stream's connection.

WebSocket (events/realtime/sockets.py): Autobahn over Twisted.

Daphne hands the application ``partial(server.handle_reply, protocol)``; the
protocol is Autobahn's, over a Twisted transport. We write with Autobahn's
``sendData`` (its own path to the transport, which keeps its order), read
Twisted's unsent bytes from ``dataBuffer``, ``offset`` and ``_tempDataLen``,
set Autobahn's ``closeHandshakeTimeout`` and send its close frame ourselves at
a stop: none of it is an API. Taken only with the pinned versions
(kernel/fastpaths.py).
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings

from kernel.fastpaths import FastPath

PATH = FastPath(
    "Daphne direct writes",
    {"daphne": "4.2.3", "twisted": "26.10.0", "autobahn": "26.11.1"},
)
PROTOCOL_MODULE = "daphne.ws_protocol"
# What Daphne loses without this module: it buffers without bound and never makes a
# writer wait, and at a stop it cancels the application before it can close.
WITHOUT = (
    "EVENTS_DIRECT_WRITES is off: under Daphne a slow consumer is no longer cut off"
    " and a stop closes sockets without 1001 (uvicorn has neither limit)"
)
PROTOCOL_NEEDS = ("sendData", "sendCloseFrame", "state", "STATE_OPEN", "closeHandshakeTimeout")
TRANSPORT_NEEDS = ("dataBuffer", "offset", "_tempDataLen", "abortConnection")


class DaphneSocket:
    """Daphne's protocol for one connection (Autobahn over a Twisted transport)."""

    server = "daphne"

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport = protocol.transport

    def write(self, data: bytes) -> bool:
        protocol = self.protocol
        if protocol.state != protocol.STATE_OPEN:
            return False
        protocol.sendData(data)  # Autobahn's own path to the transport: keeps its order
        return True

    def buffered(self) -> int:
        # Twisted buffers whatever is written and never makes a writer wait.
        transport = self.transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def abort(self) -> None:
        self.transport.abortConnection()

    def hold_close(self, seconds: float) -> None:
        # Autobahn drops a connection whose close is not answered within its
        # closeHandshakeTimeout (1 s, copied onto each protocol at connect): a client
        # still reading its backlog would see a reset instead of the close code.
        self.protocol.closeHandshakeTimeout = seconds

    def close_now(self, code: int) -> None:
        # At a stop Daphne cancels every connection's application before it can send
        # its close: the frame goes out here, in the same step. Autobahn's sendClose
        # (and so Daphne's websocket.close) refuses 1001; the frame itself is valid.
        if self.protocol.state == self.protocol.STATE_OPEN:
            self.protocol.sendCloseFrame(code=code, isReply=False)


def socket_behind(send: Any) -> DaphneSocket | None:
    """The client's socket behind Daphne's ASGI ``send``; None for another server."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    if type(protocol).__module__ != PROTOCOL_MODULE:
        return None
    if not settings.EVENTS_DIRECT_WRITES:
        PATH.refuse(WITHOUT)
    if not PATH.usable():
        return None
    transport = getattr(protocol, "transport", None)
    if PATH.lacks(protocol, PROTOCOL_NEEDS) or PATH.lacks(transport, TRANSPORT_NEEDS, "transport."):
        return None
    return DaphneSocket(protocol)


# --- the event stream's connection (adapters/http/stream_outlet.py) ------------------

OUTLET = FastPath("Daphne event-stream outlet", {"daphne": "4.2.3", "twisted": "26.10.0"})
OUTLET_NEEDS = ("dataBuffer", "offset", "_tempDataLen", "abortConnection")


class DaphneOutlet:
    """Daphne's HTTP request (Twisted): its channel's TCP transport, which never makes a
    writer wait, so the stream reads its unsent bytes itself."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def buffered(self) -> int:
        transport = self.transport
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    def abort(self) -> None:
        self.transport.abortConnection()


def outlet_behind(send: Any) -> DaphneOutlet | None:
    """The client's connection behind Daphne's HTTP ``send``; None for another server."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    request = send.args[0]
    if type(request).__module__.split(".")[0] != "daphne" or not OUTLET.usable():
        return None
    transport = getattr(request, "transport", None)
    if OUTLET.lacks(transport, OUTLET_NEEDS, "transport."):
        return None
    return DaphneOutlet(transport)
