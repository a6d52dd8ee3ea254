"""Small helpers that tests share: WebSocket clients and frame reading."""

from __future__ import annotations

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
    connected, code = await client.connect(timeout=5)
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
