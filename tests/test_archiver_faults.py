"""The archiver under Redis faults: a restart that loses the data, entries it cannot parse.

Redis is a server of the test's own (tests/redis_server.py), restarted empty.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from django.test import AsyncClient, override_settings

from events.broker import get_broker
from history import get_history, reset_history
from history.archiver import Archiver
from tests.helpers import eventually
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v2/workspaces/acme/events"
EMIT_ATTEMPTS = 50


@pytest.fixture
async def archiver(monkeypatch) -> AsyncIterator[Archiver]:
    """An archiver running in the background, finding new streams at once."""
    monkeypatch.setattr("events.broker.redis.DISCOVERY_SECS", 0.0)
    archiver = Archiver(get_broker(), get_history(), flush_msecs=50)
    task = asyncio.create_task(archiver.run())
    yield archiver
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await get_history().close()


async def emit(key: str, event_type: str) -> dict:
    """Emit one event over HTTP, retrying while Redis is not back (503); its envelope."""
    for _ in range(EMIT_ATTEMPTS):
        response = await AsyncClient().post(
            URL,
            json.dumps({"events": [{"type": event_type}]}),
            content_type="application/json",
            headers={"X-Api-Key": key},
        )
        if response.status_code == 201:
            return response.json()["events"][0]
        assert response.status_code == 503, response.content
        await asyncio.sleep(0.1)
    raise AssertionError("Redis did not come back")


async def stored_ids(event_type: str) -> list[str]:
    from events.filters import parse_filters
    from history.base import SearchQuery
    from workspaces.caller import Caller

    owner = Caller.for_user("acme", "olga", "owner")
    query = SearchQuery("acme", owner, parse_filters({"types": event_type}), limit=100, sort="asc")
    await get_history().refresh()
    return [e["id"] for e in (await get_history().search(query)).events]


async def test_events_emitted_after_redis_restarts_empty_are_archived(own_redis, key, archiver):
    before = [(await emit(key, "before"))["id"] for _ in range(3)]
    await eventually(lambda: _stored(before, "before"))
    assert await stored_ids("before") == before
    own_redis.restart(keep_data=False)
    after = [(await emit(key, "after"))["id"] for _ in range(3)]
    await eventually(lambda: _stored(after, "after"))
    assert await stored_ids("after") == after


async def _stored(ids: list[str], event_type: str) -> bool:
    return await stored_ids(event_type) == ids


async def health() -> tuple[int, dict]:
    response = await AsyncClient().get("/sys/healthcheck")
    return response.status_code, response.json()


async def test_the_health_check_says_unhealthy_while_the_archiver_cannot_store(broker, key):
    with override_settings(ELASTICSEARCH_URL=f"http://127.0.0.1:{free_port()}"):
        reset_history()
        archiver = Archiver(get_broker(), get_history(), flush_msecs=50)
        task = asyncio.create_task(archiver.run())
        try:
            assert (await health())[1]["archiver"] == "ok"
            await emit(key, "waits")
            await eventually(_archiver_failing)
            status, body = await health()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            reset_history()
    assert status == 503
    assert body["healthy"] is False
    assert body["archiver"] == "failing"
    assert "HistoryUnavailable" in body["reasons"]["archiver"]
    assert "127.0.0.1" not in json.dumps(body)  # no internals for the unauthenticated


async def _archiver_failing() -> bool:
    return (await health())[1].get("archiver") == "failing"
