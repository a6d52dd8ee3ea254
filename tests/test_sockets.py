"""Event frames written straight to the client's socket (events.realtime.sockets), under uvicorn.

What a client sees is the same with EVENTS_DIRECT_WRITES off (the ``direct_writes`` tests).

The server runs in the test's own process and event loop, on a loopback port,
so the clients are real WebSocket clients over TCP and the application is the
one the Docker image serves. Daphne's side of the same path is exercised by
the real Daphne processes of test_scaled and test_slow_consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import uvicorn
import websockets
from django.test import override_settings
from prometheus_client import REGISTRY

from events.frames import event_frame
from events.realtime import connection as connections
from events.realtime.hub import get_hub
from events.realtime.subscription import SocketSubscription
from eventsproject.asgi import router
from tests.helpers import close_code, open_raw

pytestmark = pytest.mark.django_db(transaction=True)

BIG_PAYLOAD_BYTES = 70_000  # past 65,535: the frame's 8-byte length form


@pytest.fixture
async def uvicorn_port(broker: str) -> AsyncIterator[int]:
    """uvicorn (websockets-sansio, as in the image) serving the application; yields its port."""
    config = uvicorn.Config(
        router,
        host="127.0.0.1",
        port=0,
        ws="websockets-sansio",
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.02)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    await asyncio.wait_for(task, 10)


def delivered() -> float:
    return REGISTRY.get_sample_value("events_delivered_total", {"transport": "websocket"}) or 0.0


def latencies() -> float:
    return REGISTRY.get_sample_value("events_delivery_latency_seconds_count") or 0.0


async def emit(port: int, key: str, *events: dict) -> list[dict]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        response = await client.post(
            "/v2/workspaces/acme/events",
            content=orjson.dumps({"events": list(events)}),
            headers={"X-Api-Key": key, "Content-Type": "application/json"},
        )
    assert response.status_code == 201, response.text
    return response.json()["events"]


async def events_of(socket, count: int) -> list[dict]:
    found = []
    while len(found) < count:
        frame = orjson.loads(await asyncio.wait_for(socket.recv(), 5))
        if frame["op"] == "event":
            found.append(frame["event"])
    return found


async def socket_subscription() -> SocketSubscription:
    """The one subscription of ``acme`` in this process, once the handshake has joined it."""
    for _ in range(250):
        feed = get_hub().feeds.get("acme")
        if feed is not None and feed.subscriptions:
            [subscription] = feed.subscriptions
            assert isinstance(subscription, SocketSubscription)
            return subscription
        await asyncio.sleep(0.02)
    raise AssertionError("no subscription joined")


@pytest.mark.usefixtures("direct_writes")
async def test_a_subscriber_gets_each_event_once_in_order_small_and_big(uvicorn_port, key):
    url = f"ws://127.0.0.1:{uvicorn_port}/v2/workspaces/acme/events?types=t.*"
    async with websockets.connect(url, additional_headers={"X-Api-Key": key}) as socket:
        before, observed = delivered(), latencies()
        sent = await emit(
            uvicorn_port,
            key,
            {"type": "t.small", "payload": 1},
            {"type": "t.big", "payload": "x" * BIG_PAYLOAD_BYTES},
            {"type": "other"},
            {"type": "t.medium", "payload": "y" * 1_000},
        )
        got = await events_of(socket, 3)
        assert [e["id"] for e in got] == [sent[0]["id"], sent[1]["id"], sent[3]["id"]]
        assert got[1]["payload"] == "x" * BIG_PAYLOAD_BYTES
        assert delivered() - before == 3
        assert latencies() - observed == 3
        await socket.send(orjson.dumps({"op": "ping"}).decode())
        assert orjson.loads(await asyncio.wait_for(socket.recv(), 5)) == {"op": "pong"}


@pytest.mark.usefixtures("direct_writes")
async def test_new_filters_apply_to_the_next_event(uvicorn_port, key):
    url = f"ws://127.0.0.1:{uvicorn_port}/v2/workspaces/acme/events?types=a"
    async with websockets.connect(url, additional_headers={"X-Api-Key": key}) as socket:
        await socket.send(orjson.dumps({"op": "subscribe", "filters": {"types": "b"}}).decode())
        await asyncio.sleep(0.2)
        await emit(uvicorn_port, key, {"type": "a"}, {"type": "b"})
        [event] = await events_of(socket, 1)
        assert event["type"] == "b"


async def test_a_socket_whose_close_began_takes_no_more_frames(uvicorn_port, key):
    url = f"ws://127.0.0.1:{uvicorn_port}/v2/workspaces/acme/events"
    socket = await websockets.connect(url, additional_headers={"X-Api-Key": key})
    subscription = await socket_subscription()
    [sent] = await emit(uvicorn_port, key, {"type": "before"})
    await events_of(socket, 1)
    await socket.close()
    counted = subscription.delivered
    envelope = {**sent, "id": sent["id"][:-1] + "9", "type": "after"}
    # The server answered the close; until its disconnect handler runs, nothing more goes out.
    assert subscription.socket.write(event_frame(envelope).wire) is False
    subscription.offer(envelope, event_frame(envelope))
    assert subscription.delivered == counted


async def fill_until_cut_off(port: int, key: str) -> SocketSubscription:
    """Emit big events for a client that does not read, until it counts as slow."""
    big = {"type": "big", "payload": "x" * 50_000, "options": {"persist": False}}
    subscription = await socket_subscription()
    for _ in range(100):  # at most 250 MB: far past the kernel's buffers
        await emit(port, key, *[big] * 50)
        if subscription.overflowed:
            break
    assert subscription.overflowed
    return subscription


@override_settings(EVENTS_WS_BUFFER_MAX_BYTES=256 * 1024)
async def test_a_client_that_stops_reading_is_cut_off_with_4008(uvicorn_port, key):
    reader, writer = await open_raw(uvicorn_port, key)
    await fill_until_cut_off(uvicorn_port, key)
    assert await close_code(reader) == 4008
    writer.close()


@override_settings(EVENTS_WS_BUFFER_MAX_BYTES=256 * 1024)
async def test_a_slow_client_that_never_reads_again_is_dropped(uvicorn_port, key, monkeypatch):
    monkeypatch.setattr(connections, "SLOW_CLOSE_SECS", 0.2)
    _, writer = await open_raw(uvicorn_port, key)
    await fill_until_cut_off(uvicorn_port, key)
    feed = get_hub().feeds["acme"]
    for _ in range(250):  # the server's side of the connection is gone, and its memory
        if not feed.subscriptions:
            break
        await asyncio.sleep(0.02)
    assert not feed.subscriptions
    writer.close()
