"""A stream that was reset is never resumed as if nothing happened (contract sections 2, 3).

Every workspace stream has an epoch that is lost with the stream's data; a position
(long-poll cursor, ``lastEventId``) from another epoch is outside the live buffer:
410 / 4410, and the client catches up through search. Redis here is a server of the
test's own (tests/redis_server.py), restarted with and without its data; the embedded
broker is restarted as a new server process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from django.test import override_settings

from events.broker import reset_broker
from events.event import parse_client_event
from events.filters import Filters
from events.realtime.hub import get_hub
from events.realtime.publishing import publish
from events.realtime.subscription import QueuedSubscription
from kernel.errors import CursorExpired
from tests.helpers import connect, next_frames, ws_client
from tests.redis_server import RedisServer, redis_server
from tests.servers import SERVERS, Deployment, deployment
from tests.test_hub import CALLER, CONTEXT
from tests.test_longpoll import emit, poll
from tests.test_scaled import emit as emit_to

pytestmark = pytest.mark.django_db(transaction=True)
TICKS = [{"type": "tick", "payload": n} for n in range(3)]


async def _own_redis(persistent: bool) -> AsyncIterator[RedisServer]:
    with redis_server(persistent=persistent) as server, override_settings(REDIS_URL=server.url()):
        reset_broker()
        yield server
        await get_hub().close()
        reset_broker()


@pytest.fixture
async def volatile_redis() -> AsyncIterator[RedisServer]:
    """A Redis server of this test's own, without persistence (a restart loses everything)."""
    async for server in _own_redis(persistent=False):
        yield server


@pytest.fixture
async def durable_redis() -> AsyncIterator[RedisServer]:
    """A Redis server of this test's own with an append-only file (a restart keeps all)."""
    async for server in _own_redis(persistent=True):
        yield server


async def emit_after_restart(key: str, *events: dict) -> list[dict]:
    """Emit once the restarted server answers (the first request may meet a dead connection)."""
    for _ in range(20):
        try:
            return await emit(key, *events)
        except AssertionError:
            await asyncio.sleep(0.1)
    return await emit(key, *events)


async def handshake_closed_with(key: str, last_event_id: str) -> int:
    """Connect with ``lastEventId``; the code the service closes with right away."""
    client = ws_client(query=f"lastEventId={last_event_id}", headers=[(b"x-api-key", key.encode())])
    await client.connect(timeout=10)
    closed = await client.receive_output(timeout=10)
    assert closed["type"] == "websocket.close", closed
    return closed["code"]


async def assert_expired(key: str, cursor: str) -> None:
    response = await poll(key, timeout="0", cursor=cursor)
    assert response.status_code == 410, response.content
    assert response.json()["error"] == "CursorExpired"


async def test_a_long_poll_cursor_from_before_redis_lost_its_data_answers_410(volatile_redis, key):
    cursor = (await poll(key, timeout="0")).json()["cursor"]
    lost = await emit(key, *TICKS)
    volatile_redis.restart(keep_data=False)
    await emit_after_restart(key, {"type": "after"})
    await assert_expired(key, cursor)
    await assert_expired(key, lost[0]["id"])  # a bare event id of today's form too
    fresh = (await poll(key, timeout="0")).json()["cursor"]
    assert fresh.partition(":")[0] != cursor.partition(":")[0]


async def test_a_long_poll_cursor_resumes_with_no_gap_when_redis_kept_its_data(durable_redis, key):
    cursor = (await poll(key, timeout="0")).json()["cursor"]
    sent = await emit(key, *TICKS)
    durable_redis.restart(keep_data=True)
    sent += await emit_after_restart(key, {"type": "tick", "payload": 3})
    seen: list[str] = []
    for _ in range(10):
        response = await poll(key, timeout="2", cursor=cursor, types="tick")
        assert response.status_code == 200, response.content
        seen += [e["id"] for e in response.json()["events"]]
        cursor = response.json()["cursor"]
        if len(seen) >= len(sent):
            break
    assert seen == [e["id"] for e in sent]


async def test_a_websocket_across_a_redis_reset_is_closed_with_4410_and_cannot_resume(
    volatile_redis, key
):
    live = await connect(key, query="types=tick")
    await emit(key, *TICKS)
    frames = await next_frames(live, 3, types={"tick"})
    volatile_redis.restart(keep_data=False)
    closed = await live.receive_output(timeout=20)  # told while connected, not skipped ahead
    assert (closed["type"], closed["code"]) == ("websocket.close", 4410)
    position = frames[0]["position"]
    assert position == f"{position.partition(':')[0]}:{frames[0]['event']['id']}"
    await emit_after_restart(key, {"type": "tick"})
    for last_event_id in (position, frames[0]["event"]["id"]):
        assert await handshake_closed_with(key, last_event_id) == 4410


async def test_a_websocket_resumes_with_no_gap_when_redis_kept_its_data(durable_redis, key):
    live = await connect(key, query="types=tick")
    sent = await emit(key, *TICKS)
    frames = await next_frames(live, 3, types={"tick"})
    await live.disconnect()
    durable_redis.restart(keep_data=True)
    sent += await emit_after_restart(key, {"type": "tick", "payload": 3})
    resumed = await connect(key, query=f"types=tick&lastEventId={frames[0]['position']}")
    got = await next_frames(resumed, 3, types={"tick"})
    assert [f["event"]["id"] for f in got] == [e["id"] for e in sent[1:]]
    await resumed.disconnect()


async def test_a_subscriber_the_stream_was_trimmed_past_is_told_not_skipped_ahead(broker):
    with override_settings(EVENTS_BUFFER_SIZE=50, ARCHIVE_MAX_BACKLOG=50):
        reset_broker()
        subscription = QueuedSubscription(CALLER, Filters(), last_id="", outbox_max=1000)
        await get_hub().join("acme", subscription)
        # One burst, larger than the buffer, before the feed reads again.
        events = [parse_client_event({"type": "tick"})] * 300
        await publish("acme", events, caller=CALLER, context=CONTEXT)
        assert await subscription.wait(10)
        with pytest.raises(CursorExpired):
            subscription.take()
        await get_hub().leave("acme", subscription)


@pytest.mark.parametrize("last_event_id", ["0" * 100_000, "an epoch!:1-0", "e:1-0-0"])
async def test_a_malformed_or_huge_last_event_id_closes_with_4400(broker, key, last_event_id):
    assert await handshake_closed_with(key, last_event_id) == 4400


async def read_all(socket) -> None:
    while True:
        await asyncio.wait_for(socket.recv(), 10)


async def closed_code(url: str) -> int:
    """Connect and read until the service closes; the close code."""
    async with websockets.connect(url) as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await read_all(socket)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def tick_frames(socket, count: int) -> list[dict]:
    """Read frames until ``count`` tick events came; their frames (``position`` included)."""
    found: list[dict] = []
    while len(found) < count:
        frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if frame.get("op") == "event" and frame["event"]["type"] == "tick":
            found.append(frame)
    return found


async def http_poll(running: Deployment, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=running.http(0)) as client:
        return await client.get(
            "/v2/workspaces/acme/events/poll",
            params={"timeout": "0", **params},
            headers={"X-Api-Key": running.key},
        )


@pytest.mark.parametrize("server", sorted(SERVERS))
async def test_positions_from_before_a_restart_of_the_embedded_broker_answer_410_and_4410(
    server,
):
    with deployment(1, server=server, REDIS_URL="") as running:
        query = f"apiKey={running.key}&types=tick"
        cursor = (await http_poll(running)).json()["cursor"]
        async with websockets.connect(running.ws(0, query)) as socket:
            sent = await emit_to(running, 0, *TICKS)
            [first, *_] = await tick_frames(socket, 3)
        running.restart(0)
        await emit_to(running, 0, {"type": "tick"})
        for old in (cursor, sent[0]["id"]):
            response = await http_poll(running, cursor=old)
            assert response.status_code == 410, response.text
            assert response.json()["error"] == "CursorExpired"
        for old in (first["position"], sent[0]["id"]):
            assert await closed_code(running.ws(0, f"{query}&lastEventId={old}")) == 4410


async def emit_when_up(running: Deployment, *events: dict) -> list[dict]:
    """Emit once the service answers 201 again (503 while its Redis restarts)."""
    for _ in range(50):
        async with httpx.AsyncClient(base_url=running.http(0)) as client:
            response = await client.post(
                "/v2/workspaces/acme/events",
                json={"events": list(events)},
                headers={"X-Api-Key": running.key},
            )
        if response.status_code == 201:
            return response.json()["events"]
        await asyncio.sleep(0.2)
    raise AssertionError(f"emits still fail: {response.status_code} {response.text}")


@pytest.mark.parametrize("server", sorted(SERVERS))
async def test_a_real_server_tells_its_live_websocket_and_old_cursors_when_redis_lost_its_data(
    server,
):
    with (
        redis_server(persistent=False) as own,
        deployment(1, server=server, REDIS_URL=own.url()) as running,
    ):
        cursor = (await http_poll(running)).json()["cursor"]
        async with websockets.connect(running.ws(0, f"apiKey={running.key}&types=tick")) as socket:
            sent = await emit_when_up(running, *TICKS)
            [first, *_] = await tick_frames(socket, 3)
            own.restart(keep_data=False)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await read_all(socket)  # told while connected, never skipped ahead
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4410
        await emit_when_up(running, {"type": "tick"})
        for old in (cursor, sent[0]["id"]):
            response = await http_poll(running, cursor=old)
            assert response.status_code == 410, response.text
        query = f"apiKey={running.key}&lastEventId={first['position']}"
        assert await closed_code(running.ws(0, query)) == 4410
