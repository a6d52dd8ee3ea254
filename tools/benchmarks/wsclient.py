"""A lean WebSocket client protocol for load generation.

The ``websockets`` library costs tens of microseconds per received message,
which on a small machine would make the generator, not the service, the
bottleneck. This protocol does the handshake, then parses server frames
(unmasked) straight out of the receive buffer and hands each text frame to a
callback with the time the chunk arrived. It answers pings and records the
close code; it can stop reading to play a slow consumer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
OnText = Callable[[bytes, int], None]


class HandshakeRefused(Exception):
    """The server did not switch protocols."""


def handshake_request(url: str, headers: dict[str, str], key: bytes) -> bytes:
    """The HTTP upgrade request for ``ws://host:port/path?query``."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (clients must mask)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    repeated = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        size, "big"
    )
    return head + mask + masked


def _frame_header(buf: bytearray, pos: int, avail: int) -> tuple[int, int] | None:
    """(header length, payload length) of the frame at ``pos``; None if incomplete."""
    length = buf[pos + 1] & 0x7F
    if length == 126:
        return (4, int.from_bytes(buf[pos + 2 : pos + 4], "big")) if avail >= 4 else None
    if length == 127:
        return (10, int.from_bytes(buf[pos + 2 : pos + 10], "big")) if avail >= 10 else None
    return 2, length


class WsClient(asyncio.Protocol):
    """One WebSocket connection; ``on_text(frame, arrival_ns)`` per text message."""

    def __init__(self, request: bytes, accept: bytes, on_text: OnText) -> None:
        self.request = request
        self.accept = accept
        self.on_text = on_text
        self.buf = bytearray()
        self.upgraded = False
        self.fragments: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded and not self._upgrade():
            return
        self._parse(time.time_ns())

    def _upgrade(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buf[:end])
        del self.buf[: end + 4]
        if not head.startswith(b"HTTP/1.1 101") or self.accept not in head:
            self._finish(None, HandshakeRefused(head.split(b"\r\n", 1)[0].decode()))
            return False
        self.upgraded = True
        self.opened.set_result(None)
        return True

    def _parse(self, now_ns: int) -> None:
        buf, pos, size = self.buf, 0, len(self.buf)
        while size - pos >= 2:
            header = _frame_header(buf, pos, size - pos)
            if header is None or pos + header[0] + header[1] > size:
                break
            first, start = buf[pos], pos + header[0]
            pos = start + header[1]
            self._frame(first, bytes(buf[start:pos]), now_ns)
        if pos:
            del buf[:pos]

    def _frame(self, first: int, payload: bytes, now_ns: int) -> None:
        opcode = first & 0x0F
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            self._message(first & 0x80, payload, now_ns)
        elif opcode == OP_PING:
            self.send_frame(OP_PONG, payload)
        elif opcode == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.send_frame(OP_CLOSE, payload[:2])
            self._finish(code)

    def _message(self, fin: int, payload: bytes, now_ns: int) -> None:
        if not fin:
            self.fragments.append(payload)
            return
        if self.fragments:
            payload = b"".join([*self.fragments, payload])
            self.fragments = []
        self.received += 1
        self.on_text(payload, now_ns)

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """Send one masked frame if the connection is open."""
        if self.transport and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    def send_text(self, text: str | bytes) -> None:
        """Send a text message."""
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def close(self, code: int = 1000) -> None:
        """Start a clean close."""
        self.send_frame(OP_CLOSE, code.to_bytes(2, "big"))

    def stop_reading(self) -> None:
        """Stop reading from the socket: a consumer that never reads."""
        if self.transport:
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(None, exc if not self.upgraded else None)

    def _finish(self, code: int | None, error: BaseException | None = None) -> None:
        if not self.opened.done():
            if error:
                self.opened.set_exception(error)
            else:
                self.opened.set_exception(ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(code)
        if self.transport and code is not None:
            self.transport.close()


async def connect(
    url: str, on_text: OnText, headers: dict[str, str] | None = None, wait_secs: float = 10
) -> WsClient:
    """Open a WebSocket to ``url`` and wait for the upgrade."""
    parts = urlsplit(url)
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + GUID, usedforsecurity=False).digest())
    request = handshake_request(url, headers or {}, key)
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: WsClient(request, accept, on_text), parts.hostname, parts.port or 80
    )
    await asyncio.wait_for(asyncio.shield(client.opened), wait_secs)
    return client
