"""A client's socket within reach: event frames written straight to it.

Sending an event through ASGI costs, per delivery, a wake-up of the
connection's sender task, a ``websocket.send`` message through the server's
state machine and a framing of the same bytes again. Both servers we run hand
the application a ``send`` that leads to the connection's own protocol object,
so a connection can write the prepared frame (:class:`events.frames.EventFrame`)
to the socket directly, in the same step in which the feed dispatches the
event. Everything else (the handshake, the close) still goes through ASGI.
Each write is one whole frame, from the one thread of the event loop, so
frames never interleave; a socket whose close has begun takes nothing more.

This is the engine's side only: what it writes to. The servers' sides, which
read their private attributes, are in ``adapters/websocket/direct_*.py``, one
module per server, each pinned to the versions it was written for and behind
``EVENTS_DIRECT_WRITES`` (:mod:`kernel.fastpaths`). A server we do not know,
the setting off, or the test suite's ``WebsocketCommunicator`` gives no
socket, and the connection sends through ASGI.
"""

from __future__ import annotations

from typing import Protocol


class DirectSocket(Protocol):
    """The few things a connection does with its client's socket."""

    # Which server's socket this is (the ``writes`` label of events_websocket_opened_total).
    server: str

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
