"""The AsyncAPI document against real servers: what uvicorn and Daphne carry is described.

The frames a server writes straight to the client's socket (``EVENTS_DIRECT_WRITES``,
the default) are built apart from the ASGI path of ``tests/test_asyncapi.py``; each is
validated here against the document the same server serves, as is each message of the
event stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.servers import Deployment, deployment
from tests.sse_client import Reader, stream
from tests.test_asyncapi import Undescribed, describe

SERVERS = ["uvicorn", "daphne"]


@pytest.fixture(scope="module", params=SERVERS)
def running(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    with deployment(1, server=request.param, REDIS_URL="") as started:
        yield started


def served(running: Deployment) -> dict:
    response = httpx.get(f"{running.http(0)}/v2/asyncapi.json", timeout=10)
    assert response.status_code == 200
    return response.json()


async def test_every_frame_a_server_writes_is_described(running):
    document = served(running)
    key = running.key
    async with (
        websockets.connect(running.ws(0, f"apiKey={key}&types=tick")) as subscriber,
        websockets.connect(running.ws(0, f"apiKey={key}&types=nothing.ever")) as emitter,
    ):
        frames = [
            {"op": "emit", "ref": "r1", "event": {"type": "tick", "payload": {"n": 1}}},
            {"op": "emit", "ref": 2, "event": {"type": "a/b"}},
            {"op": "dance"},
            {"op": "ping", "ref": "p"},
        ]
        for frame in frames:
            await emitter.send(json.dumps(frame))
        answers = [json.loads(await asyncio.wait_for(emitter.recv(), 10)) for _ in frames]
        event = json.loads(await asyncio.wait_for(subscriber.recv(), 10))
        names = [describe(document, "events", frame) for frame in [*answers, event]]
        assert names == ["ack", "error", "error", "pong", "event"]
        with pytest.raises(Undescribed):
            describe(document, "events", {**event, "extra": True})

    async with websockets.connect(running.ws(0, f"apiKey={key}&nope=1")) as refused:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(refused.recv(), 10)
    codes = {close["code"] for close in document["channels"]["events"]["x-close-codes"]}
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400
    assert 4400 in codes


async def test_every_message_of_a_servers_event_stream_is_described(running):
    document = served(running)
    headers = {"X-Api-Key": running.key}
    async with stream(running.http(0), "types=tock", headers) as response:
        reader = Reader(response)
        first = await reader.next()
        assert first is not None
        assert first.retry is not None
        async with httpx.AsyncClient(base_url=running.http(0)) as client:
            emitted = await client.post(
                "/v2/workspaces/acme/events",
                json={"events": [{"type": "tock", "payload": [1, "two"]}]},
                headers=headers,
            )
            assert emitted.status_code == 201
        [message] = await reader.events(1)
    assert describe(document, "stream", message.json()) == "streamEvent"
    assert message.id is not None
    assert message.id.endswith(message.json()["id"])
    async with stream(running.http(0), "lastEventId=0:1-0", headers) as response:
        messages = await Reader(response).rest()
    [error] = [m for m in messages if m.event == "error"]
    assert describe(document, "stream", error.json()) == "streamError"
