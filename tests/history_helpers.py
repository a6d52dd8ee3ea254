"""Helpers of the history's tests: emit over HTTP, archive everything, search."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.test import AsyncClient, override_settings

from events.broker import get_archive_queue, reset_broker
from events.realtime import outbox
from history import get_history
from history.archiver import Archiver


def events_path(workspace_id: str = "acme") -> str:
    """The emit / search URL of a workspace."""
    return f"/v2/workspaces/{workspace_id}/events"


async def emit(key: str, *events: dict[str, Any], workspace_id: str = "acme") -> list[dict]:
    """Emit events over HTTP; return the stored envelopes."""
    reply = await AsyncClient().post(
        events_path(workspace_id),
        {"events": list(events)},
        content_type="application/json",
        headers={"X-Api-Key": key},
    )
    assert reply.status_code == 201, reply.content
    return reply.json()["events"]


async def archive_all() -> int:
    """Run the archiver until the broker has nothing left for it; return how many it read.

    Audit events are queued and published by the outbox's writer: they go out first.
    """
    async with asyncio.timeout(10):
        await outbox.flush()
    archiver = Archiver(get_archive_queue(), get_history(), flush_msecs=20)
    total = 0
    while count := await archiver.step():
        total += count
    await get_history().refresh()
    return total


async def search(key: str, workspace_id: str = "acme", **params: Any) -> Any:
    """GET the search endpoint with query parameters (a list value repeats the key)."""
    return await AsyncClient().get(events_path(workspace_id), params, headers={"X-Api-Key": key})


async def found_types(key: str, **params: Any) -> list[str]:
    """The types of the events a search answers, excluding the searches' own audit events."""
    reply = await search(key, **params)
    assert reply.status_code == 200, reply.content
    events = reply.json()["result"]["events"]
    return [e["type"] for e in events if e["type"] != "events.searched"]


# --- autouse fixtures of the search tests (import them into the test module) ---


@pytest.fixture(autouse=True)
def memory_broker():
    """Search does not depend on the broker: the embedded one, empty for each test."""
    with override_settings(REDIS_URL=""):
        reset_broker()
        yield
        reset_broker()


@pytest.fixture(autouse=True)
async def close_history():
    """Close the history's client in the test's own event loop."""
    yield
    await get_history().close()
