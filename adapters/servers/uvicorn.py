"""uvicorn, past its API: the WebSocket's direct writes and the event stream's connection.

WebSocket (events/realtime/sockets.py): ``websockets-sansio``.

uvicorn hands the application the bound ``asgi_send`` of the connection's
``WebSocketsSansIOProtocol``, whose asyncio transport carries the frames; we
read its ``transport``, ``close_sent`` and ``disconnected``, which are not
uvicorn's API. Taken only with the pinned version (kernel/fastpaths.py).
"""

from __future__ import annotations

from typing import Any

from kernel.fastpaths import FastPath

PATH = FastPath("uvicorn direct writes", {"uvicorn": "0.54.0"})
PROTOCOL = "WebSocketsSansIOProtocol"
PROTOCOL_NEEDS = ("transport", "close_sent", "disconnected")
TRANSPORT_NEEDS = ("write", "is_closing", "get_write_buffer_size", "abort")


class UvicornSocket:
    """uvicorn's ``websockets-sansio`` protocol for one connection: an asyncio transport."""

    server = "uvicorn"

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport = protocol.transport

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


def socket_behind(send: Any) -> UvicornSocket | None:
    """The client's socket behind uvicorn's ASGI ``send``; None for another server."""
    protocol = getattr(send, "__self__", None)
    if type(protocol).__name__ != PROTOCOL or not PATH.usable():
        return None
    transport = getattr(protocol, "transport", None)
    if PATH.lacks(protocol, PROTOCOL_NEEDS) or PATH.lacks(transport, TRANSPORT_NEEDS, "transport."):
        return None
    return UvicornSocket(protocol)


# --- the event stream's connection (adapters/http/stream_outlet.py) ------------------

OUTLET = FastPath("uvicorn event-stream outlet", {"uvicorn": "0.54.0"})
OUTLET_NEEDS = ("get_write_buffer_size", "abort")


class UvicornOutlet:
    """uvicorn's HTTP protocol (httptools or h11): an asyncio transport."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def buffered(self) -> int:
        return int(self.transport.get_write_buffer_size())

    def abort(self) -> None:
        self.transport.abort()


def outlet_behind(send: Any) -> UvicornOutlet | None:
    """The client's connection behind uvicorn's HTTP ``send``; None for another server."""
    protocol = getattr(send, "__self__", None)
    if type(protocol).__module__.split(".")[0] != "uvicorn" or not OUTLET.usable():
        return None
    transport = getattr(protocol, "transport", None)
    if OUTLET.lacks(transport, OUTLET_NEEDS, "transport."):
        return None
    return UvicornOutlet(transport)
