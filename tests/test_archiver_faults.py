"""The archiver under Redis faults: a restart that loses the data, entries it cannot parse.

Redis is a server of the test's own (tests/redis_server.py), restarted empty.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator

import pytest
import redis
from django.test import AsyncClient, override_settings
from prometheus_client import REGISTRY

from events.broker import get_archive_queue, reset_broker
from history import get_history, reset_history
from history.archiver import Archiver
from kernel.ids import from_stream_id, to_stream_id
from tests.helpers import eventually
from tests.history_helpers import archive_all
from tests.redis_server import RedisServer
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v2/workspaces/acme/events"
EMIT_ATTEMPTS = 50


@pytest.fixture
async def archiver(monkeypatch) -> AsyncIterator[Archiver]:
    """An archiver running in the background, finding new streams at once."""
    monkeypatch.setattr("events.broker.redis_archive.DISCOVERY_SECS", 0.0)
    archiver = Archiver(get_archive_queue(), get_history(), flush_msecs=50)
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
    from kernel.caller import Caller

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
        archiver = Archiver(get_archive_queue(), get_history(), flush_msecs=50)
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


# --- Entries another service wrote that are not events of this service ---------------

STREAM = "events:stream:acme"
BACKLOG = "events_archive_backlog "
GARBAGE: list[dict[str, str]] = [
    {"other": "field"},
    {"event": "not json {"},
    {"event": '{"no": "type"}'},
    {"event": '"a string"'},
]


def raw_client(server: RedisServer) -> redis.Redis:
    """A client of the test's own server; one entry per stream node, so ``~`` trims exactly."""
    client = redis.Redis(port=server.port)
    client.config_set("stream-node-max-entries", 1)
    return client


def unparsable_total() -> float:
    return REGISTRY.get_sample_value("events_archive_unparsable_total") or 0.0


async def emit_many(key: str, event_type: str, count: int) -> list[str]:
    response = await AsyncClient().post(
        URL,
        json.dumps({"events": [{"type": event_type}] * count}),
        content_type="application/json",
        headers={"X-Api-Key": key},
    )
    assert response.status_code == 201, response.content
    return [event["id"] for event in response.json()["events"]]


def skip_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]


async def test_entries_it_cannot_parse_are_skipped_acknowledged_counted_and_logged_once(
    own_redis, key, caplog
):
    client = raw_client(own_redis)
    counted = unparsable_total()
    good = await emit_many(key, "good", 3)
    for fields in GARBAGE * 2:
        client.xadd(STREAM, fields)
    good += await emit_many(key, "good", 3)
    with caplog.at_level(logging.WARNING, logger="events.broker.redis"):
        await archive_all()
        client.xadd(STREAM, GARBAGE[0])
        await archive_all()
    assert await stored_ids("good") == good
    assert client.xpending(STREAM, "archiver")["pending"] == 0
    assert unparsable_total() == counted + 2 * len(GARBAGE) + 1
    [line] = skip_lines(caplog)
    assert STREAM in line


async def test_it_trims_up_to_the_oldest_pending_entry_and_keeps_it(own_redis, key):
    client = raw_client(own_redis)
    with override_settings(EVENTS_BUFFER_SIZE=10):
        reset_broker()
        await emit_many(key, "old", 30)
        await archive_all()
        assert client.xlen(STREAM) == 10  # the live buffer
        later = await emit_many(key, "later", 30)
        [[_, [(pending_id, _)]]] = client.xreadgroup("archiver", "dead", {STREAM: ">"}, count=1)
        await archive_all()
    assert pending_id.decode() == to_stream_id(later[0])
    # Before the pending entry: archived, trimmed. From it on: kept, it included.
    assert [from_stream_id(i) for i, _ in client.xrange(STREAM)] == later
    assert client.xpending(STREAM, "archiver")["pending"] == 1


async def test_an_unknown_backlog_is_not_reported_as_zero(own_redis, key):
    client = raw_client(own_redis)
    ids = await emit_many(key, "waits", 3)
    assert await get_archive_queue().backlog() == 3
    client.xdel(STREAM, to_stream_id(ids[1]))  # Redis no longer knows the group's lag
    assert await get_archive_queue().backlog() is None
    scraped = (await AsyncClient().get("/metrics")).content.decode()
    [backlog] = [
        line.split()[-1]
        for line in scraped.splitlines()
        if line.startswith("events_archive_backlog ")
    ]
    assert math.isnan(float(backlog))
