"""The fast paths (EVENTS_DIRECT_WRITES): taken on the servers they were written for, or not at all.

A real uvicorn and a real Daphne (tests/servers.py). With the setting on, a
delivered event must have been written straight to the server's socket
(``events_websocket_opened_total{writes="uvicorn"}`` or ``"daphne"``): these
tests fail when an upgrade of a server, of Channels or of Autobahn and Twisted
silently dropped the service to the slow path. With the setting off, the same
client sees the same frames, all through plain ASGI ``send``.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import orjson
import pytest
import websockets

from kernel.fastpaths import FastPath
from tests.servers import SERVERS, Deployment, deployment
from tests.test_metrics import value

WRITES = ("uvicorn", "daphne", "asgi")


async def deliver_one(running: Deployment) -> dict:
    """Subscribe, emit one event over HTTP, read it and a pong; return the event."""
    async with websockets.connect(running.ws(0, f"apiKey={running.key}&types=direct")) as socket:
        async with httpx.AsyncClient(base_url=running.http(0), timeout=10) as client:
            body = {"events": [{"type": "direct", "payload": {"n": 1}}]}
            reply = await client.post(
                "/v2/workspaces/acme/events", json=body, headers={"X-Api-Key": running.key}
            )
            assert reply.status_code == 201, reply.text
        frame = orjson.loads(await asyncio.wait_for(socket.recv(), 10))
        await socket.send('{"op": "ping"}')
        assert orjson.loads(await asyncio.wait_for(socket.recv(), 10)) == {"op": "pong"}
    return frame


async def opened_by_writes(running: Deployment) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=running.http(0), timeout=10) as client:
        metrics = (await client.get("/metrics")).text
    return {w: value(metrics, "events_websocket_opened_total", writes=w) for w in WRITES}


@pytest.mark.parametrize("direct", ["true", "false"], ids=["on", "off"])
@pytest.mark.parametrize("server", sorted(SERVERS))
async def test_event_frames_go_straight_to_the_servers_socket_unless_turned_off(server, direct):
    with deployment(1, server=server, REDIS_URL="", EVENTS_DIRECT_WRITES=direct) as running:
        frame = await deliver_one(running)
        opened = await opened_by_writes(running)
    assert frame["op"] == "event"
    assert frame["event"]["payload"] == {"n": 1}
    taken = server if direct == "true" else "asgi"
    assert opened == {w: 1.0 if w == taken else 0.0 for w in WRITES}


def test_a_fast_path_on_other_versions_is_refused_with_one_log_line(caplog):
    path = FastPath("a speed-up", {"uvicorn": "0.0.1", "no-such-distribution": "1"})
    with caplog.at_level(logging.WARNING, logger="events.fastpaths"):
        assert not path.usable()
        assert not path.usable()
    [line] = [r.getMessage() for r in caplog.records if r.name == "events.fastpaths"]
    assert "written for uvicorn 0.0.1" in line


def test_a_fast_path_whose_attributes_are_gone_is_refused_with_one_log_line(caplog):
    path = FastPath("a speed-up", {})
    with caplog.at_level(logging.WARNING, logger="events.fastpaths"):
        assert path.usable()
        assert path.lacks(object(), ("_tempDataLen",), "transport.")
        assert path.lacks(object(), ("_tempDataLen",), "transport.")
    [line] = [r.getMessage() for r in caplog.records if r.name == "events.fastpaths"]
    assert "no transport._tempDataLen" in line
