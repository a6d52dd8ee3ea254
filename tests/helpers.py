"""Small helpers that tests share: WebSocket clients and frame reading."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.testing import WebsocketCommunicator

from eventsproject.asgi import router


def ws_client(
    workspace_id: str = "acme", query: str = "", headers: Any = None
) -> WebsocketCommunicator:
    """A WebSocket client of the real ASGI application."""
    path = f"/v2/workspaces/{workspace_id}/events" + (f"?{query}" if query else "")
    return WebsocketCommunicator(router, path, headers=headers or [])


async def connect(key: str, workspace_id: str = "acme", query: str = "") -> WebsocketCommunicator:
    """Connect with an API key and check the handshake was accepted."""
    client = ws_client(workspace_id, query, headers=[(b"x-api-key", key.encode())])
    connected, code = await client.connect(timeout=10)
    assert connected, f"refused with {code}"
    return client


async def next_frames(
    client: WebsocketCommunicator,
    count: int,
    *,
    op: str = "event",
    types: set[str] | None = None,
    within: float = 5,
) -> list[dict]:
    """Read frames until ``count`` frames of ``op`` (and of one of ``types``) came."""
    found: list[dict] = []
    while len(found) < count:
        frame = await client.receive_json_from(timeout=within)
        if frame.get("op") != op:
            continue
        if types and frame.get("event", {}).get("type") not in types:
            continue
        found.append(frame)
    return found


async def no_frame(
    client: WebsocketCommunicator,
    *,
    op: str = "event",
    types: set[str] | None = None,
    wait: float = 0.3,
) -> bool:
    """True if no matching frame arrives within ``wait`` seconds (other frames are read)."""
    while not await client.receive_nothing(timeout=wait):
        frame = await client.receive_json_from()
        if frame.get("op") == op and (not types or frame.get("event", {}).get("type") in types):
            return False
    return True


async def open_raw(port: int, key: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket handshake by hand (``types=big``); afterwards nobody reads unless asked."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    nonce = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /v2/workspaces/acme/events?types=big HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {nonce}\r\nX-Api-Key: {key}\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One server frame: its opcode and payload (IncompleteReadError if the socket ended)."""
    head = await asyncio.wait_for(reader.readexactly(2), 20)
    size = head[1] & 0x7F
    if size >= 126:
        extra = await reader.readexactly(2 if size == 126 else 8)
        size = int.from_bytes(extra, "big")
    return head[0] & 0x0F, await reader.readexactly(size)


async def close_code(reader: asyncio.StreamReader) -> int | None:
    """Read server frames until the close frame; its code (None if the socket just ended)."""
    while True:
        try:
            opcode, payload = await read_frame(reader)
        except asyncio.IncompleteReadError:
            return None
        if opcode == 0x8:
            return int.from_bytes(payload[:2], "big")


DEADLINE_SECS = 60.0


async def eventually(check: Callable[[], Awaitable[bool]], secs: float = DEADLINE_SECS) -> None:
    """Wait until ``await check()`` is true, or the deadline (the test's assertion follows)."""
    deadline = time.monotonic() + secs
    while not await check():
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)
