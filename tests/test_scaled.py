"""The scaled deployment: several service processes sharing Redis (contract sections 3 and 7).

These tests start real Daphne processes on loopback ports and talk to them as a
client would, over real sockets.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import orjson
import redis.asyncio as aioredis
import websockets

from tests.conftest import REDIS_TEST_URL
from tests.servers import Deployment


async def emit(running: Deployment, index: int, *events: dict) -> list[dict]:
    async with httpx.AsyncClient(base_url=running.http(index)) as client:
        response = await client.post(
            "/v2/workspaces/acme/events",
            content=json.dumps({"events": list(events)}),
            headers={"X-Api-Key": running.key, "Content-Type": "application/json"},
        )
    assert response.status_code == 201, response.text
    return response.json()["events"]


async def receive_events(socket, count: int, event_type: str, within: float = 10) -> list[dict]:
    """Read frames until ``count`` events of ``event_type`` came."""
    found: list[dict] = []
    while len(found) < count:
        frame = json.loads(await asyncio.wait_for(socket.recv(), within))
        if frame.get("op") == "event" and frame["event"]["type"] == event_type:
            found.append(frame["event"])
    return found


async def nothing_more(socket, event_type: str, wait: float = 0.5) -> bool:
    try:
        await receive_events(socket, 1, event_type, within=wait)
    except TimeoutError:
        return True
    return False


async def test_an_event_emitted_on_one_process_reaches_subscribers_of_the_other(two_processes):
    running = two_processes
    query = f"apiKey={running.key}&types=orders.*"
    async with (
        websockets.connect(running.ws(1, query)) as far,
        websockets.connect(running.ws(0, query)) as near,
    ):
        sent = await emit(
            running, 0, *[{"type": "orders.created", "payload": n} for n in range(20)]
        )
        for socket in (far, near):
            got = await receive_events(socket, 20, "orders.created")
            assert [e["id"] for e in got] == [e["id"] for e in sent]
            assert await nothing_more(socket, "orders.created")


async def test_websocket_emits_are_acked_at_once_and_reach_the_other_process(two_processes):
    running = two_processes
    async with (
        websockets.connect(running.ws(1, f"apiKey={running.key}&types=chat.*")) as far,
        websockets.connect(running.ws(0, f"apiKey={running.key}&types=none")) as emitter,
    ):
        for n in range(3):  # the first frames right after the handshake, then more
            frame = {"op": "emit", "ref": n, "event": {"type": "chat.said", "payload": n}}
            await emitter.send(json.dumps(frame))
        acks = [json.loads(await asyncio.wait_for(emitter.recv(), 10)) for _ in range(3)]
        assert [(a["op"], a["ref"]) for a in acks] == [("ack", 0), ("ack", 1), ("ack", 2)]
        got = await receive_events(far, 3, "chat.said")
        assert [e["id"] for e in got] == [a["event"]["id"] for a in acks]
        await emitter.send(json.dumps({"op": "ping"}))
        assert json.loads(await asyncio.wait_for(emitter.recv(), 10)) == {"op": "pong"}


async def test_a_subscriber_that_reconnects_with_last_event_id_gets_exactly_what_it_missed(
    two_processes,
):
    running = two_processes
    query = f"apiKey={running.key}&types=resume.*"
    async with websockets.connect(running.ws(1, query)) as socket:
        before = await emit(running, 0, {"type": "resume.tick", "payload": 0})
        [seen] = await receive_events(socket, 1, "resume.tick")
        assert seen["id"] == before[0]["id"]
    missed = await emit(running, 0, *[{"type": "resume.tick", "payload": n} for n in range(1, 6)])
    async with websockets.connect(running.ws(1, f"{query}&lastEventId={seen['id']}")) as socket:
        after = await emit(running, 0, {"type": "resume.tick", "payload": 6})
        got = await receive_events(socket, 6, "resume.tick")
        assert [e["id"] for e in got] == [e["id"] for e in missed + after]
        assert await nothing_more(socket, "resume.tick")


async def test_an_event_written_to_redis_by_another_service_reaches_subscribers(two_processes):
    """The README's recipe for other services (contract section 7), with a plain client."""
    running = two_processes
    async with websockets.connect(running.ws(0, f"apiKey={running.key}&types=billing.*")) as socket:
        await asyncio.sleep(0.2)
        client = aioredis.Redis.from_url(REDIS_TEST_URL)
        event = {
            "type": "billing.invoice.paid",
            "payload": {"invoice": "F-1"},
            "source": {"userId": "billing-service", "serviceTopic": "billing"},
        }
        stream_id = await client.xadd("events:stream:acme", {"event": orjson.dumps(event)})
        await client.aclose()
        [got] = await receive_events(socket, 1, "billing.invoice.paid")
    ms, seq = stream_id.decode().split("-")
    assert got["id"] == f"{int(ms):016d}-{int(seq):010d}"
    assert got["payload"] == {"invoice": "F-1"}
    assert got["source"]["workspaceId"] == "acme"
    assert got["source"]["userId"] == "billing-service"
    assert got["createdAt"].endswith("Z")
    assert got["size"] > 0


async def test_long_polls_on_either_process_see_the_same_events(two_processes):
    running = two_processes
    params = {"timeout": "0"}
    headers = {"X-Api-Key": running.key}
    async with httpx.AsyncClient() as client:
        start = [
            (
                await client.get(
                    f"{running.http(i)}/v2/workspaces/acme/events/poll",
                    params=params,
                    headers=headers,
                )
            ).json()["cursor"]
            for i in (0, 1)
        ]
        sent = await emit(running, 1, {"type": "poll.tick"}, {"type": "poll.tick"})
        for index, cursor in enumerate(start):
            response = await client.get(
                f"{running.http(index)}/v2/workspaces/acme/events/poll",
                params={"timeout": "5", "cursor": cursor, "types": "poll.*"},
                headers=headers,
            )
            assert [e["id"] for e in response.json()["events"]] == [e["id"] for e in sent]
