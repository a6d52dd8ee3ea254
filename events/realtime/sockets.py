"""A client's socket within reach: event frames written straight to it.

Sending an event through ASGI costs, per delivery, a wake-up of the
connection's sender task, a ``websocket.send`` message through the server's
state machine and a framing of the same bytes again. Both servers we run hand
the application a ``send`` that leads to the connection's own protocol object,
so a consumer can write the prepared frame (:class:`events.frames.EventFrame`)
to the socket directly, in the same step in which the feed dispatches the
event. Everything else (the handshake, acks, errors, pings, the close) still
goes through ASGI. Each write is one whole frame, from the one thread of the
event loop, so frames never interleave; a socket whose close has begun takes
nothing more.

A server we do not know (or the test suite's ``WebsocketCommunicator``)
gives None, and the consumer sends through ASGI as before.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol


class DirectSocket(Protocol):
    """The few things a consumer does with its client's socket."""

    def write(self, data: bytes) -> bool:
        """Write whole frames; False (and nothing written) once the socket is closing."""

    def buffered(self) -> int:
        """Bytes written but not yet taken by the client's TCP connection."""

    def abort(self) -> None:
        """Drop the connection at once, whatever it still holds."""

    def hold_close(self, seconds: float) -> None:
        """Let the close handshake wait this long for the client's answer."""

    def close_now(self, code: int) -> None:
        """Start the close handshake at once, where the server would not wait for the app."""


class _ServerSocket:
    """A server's protocol object for one connection, and its transport."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport = protocol.transport


class UvicornSocket(_ServerSocket):
    """uvicorn's ``websockets-sansio`` protocol: an asyncio transport."""

    def write(self, data: bytes) -> bool:
        protocol = self.protocol
        if protocol.close_sent or protocol.disconnected or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    def buffered(self) -> int:
        return int(self.transport.get_write_buffer_size())

    def abort(self) -> None:
        self.transport.abort()

    def hold_close(self, seconds: float) -> None:
        """Nothing to do: uvicorn waits for the close frame to be written, then ends."""

    def close_now(self, code: int) -> None:
        """Nothing to do: uvicorn lets the application close (``websocket.close``)."""


class DaphneSocket(_ServerSocket):
    """Daphne's protocol (Autobahn over a Twisted transport)."""

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


def direct_socket(send: Any) -> DirectSocket | None:
    """The client's socket behind an ASGI ``send``, where the server is one we know."""
    owner = getattr(send, "__self__", None)
    if type(owner).__name__ == "WebSocketsSansIOProtocol" and hasattr(owner, "transport"):
        return UvicornSocket(owner)
    if isinstance(send, functools.partial) and send.args:
        protocol = send.args[0]
        transport = getattr(protocol, "transport", None)
        if hasattr(protocol, "sendData") and hasattr(transport, "_tempDataLen"):
            return DaphneSocket(protocol)
    return None
