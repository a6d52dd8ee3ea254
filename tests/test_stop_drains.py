"""A stop loses nothing that was acknowledged (issue 11 item 16).

A real server process on embedded defaults (the in-memory broker and the SQLite
history: what ``./scripts/serve`` runs) takes a burst of persistent emits; right after
the last 201, it gets SIGTERM. A new process on the same data then finds every
acknowledged event in the history, by id. Before, the events of the last second before
a stop stayed in the in-memory broker and were gone.
"""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from tests.conftest import REDIS_TEST_URL, flush_redis
from tests.helpers import close_code, open_raw, read_frame
from tests.servers import SERVERS, SETUPS, Deployment, deployment
from tests.test_redis_faults import archived

REQUESTS = 20
EVENTS_PER_REQUEST = 50
STOP_TIMEOUT_SECS = 30
GOING_AWAY = 1001


async def burst(base_url: str, key: str) -> list[str]:
    """Emit concurrently; the ids the service acknowledged with 201."""
    body = {
        "events": [
            {"type": "burst", "payload": {"n": n}, "options": {"persist": True}}
            for n in range(EVENTS_PER_REQUEST)
        ]
    }
    headers = {"X-Api-Key": key}
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as client:
        replies = await asyncio.gather(
            *(client.post("/v2/workspaces/acme/events", json=body) for _ in range(REQUESTS))
        )
    assert {reply.status_code for reply in replies} == {201}
    return [event["id"] for reply in replies for event in reply.json()["events"]]


async def live(reader: asyncio.StreamReader, running: Deployment) -> None:
    """Once the socket (subscribed to ``big``) got an event: the service holds it as open."""
    event = {"events": [{"type": "big", "payload": {}}]}
    async with httpx.AsyncClient(
        base_url=running.http(0), headers={"X-Api-Key": running.key}
    ) as client:
        assert (await client.post("/v2/workspaces/acme/events", json=event)).status_code == 201
    opcode, _ = await read_frame(reader)
    assert opcode == 0x1  # the event, as text


def stop(running: Deployment, index: int, how: signal.Signals) -> int:
    """Send the signal; the process's exit code once it has stopped."""
    process = running.processes[index]
    process.send_signal(how)
    return process.wait(timeout=STOP_TIMEOUT_SECS)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("server", sorted(SERVERS))
async def test_a_stop_right_after_a_burst_loses_no_acknowledged_event(server, how):
    with deployment(1, server=server, REDIS_URL="") as running:
        acknowledged = await burst(running.http(0), running.key)
        stop(running, 0, how)
        running.restart(0)
        found = await archived(running, "burst")
    assert len(acknowledged) == REQUESTS * EVENTS_PER_REQUEST
    assert sorted(found) == sorted(acknowledged)


@pytest.mark.parametrize("setup", sorted(SETUPS))
async def test_a_stop_closes_websockets_with_1001_and_audits_them(setup):
    with deployment(1, **SETUPS[setup], REDIS_URL="") as running:
        reader, writer = await open_raw(running.ports[0], running.key)
        await live(reader, running)
        running.processes[0].send_signal(signal.SIGTERM)
        code = await close_code(reader)
        writer.close()
        running.processes[0].wait(timeout=STOP_TIMEOUT_SECS)
        running.restart(0)
        headers = {"X-Api-Key": running.key}
        async with httpx.AsyncClient(base_url=running.http(0), headers=headers) as client:
            reply = await client.get(
                "/v2/workspaces/acme/events", params={"types": "events.unsubscribed"}
            )
    assert code == GOING_AWAY
    [audit] = reply.json()["result"]["events"]
    assert audit["payload"]["code"] == GOING_AWAY


@pytest.mark.parametrize("server", sorted(SERVERS))
async def test_a_stop_is_clean_every_background_task_stopped_by_its_owner(server, tmp_path):
    """With Redis (the most background work: a feed, the archiver, the outbox's writer, the
    control listener), a stop ends each before the loop does: no "Task was destroyed but
    it is pending", no stack, a clean exit."""
    flush_redis()
    output = tmp_path / "server.log"
    with deployment(1, server=server, output=output, REDIS_URL=REDIS_TEST_URL) as running:
        reader, writer = await open_raw(running.ports[0], running.key)
        await live(reader, running)  # a feed, the archiver and the listeners are running
        exit_code = stop(running, 0, signal.SIGTERM)
        writer.close()
    flush_redis()
    log = output.read_text()
    # uvicorn re-raises the signal once it has shut down, so that its exit tells it.
    assert exit_code in (0, -signal.SIGTERM)
    assert '"message":"stopped"' in log
    for sign_of_an_unowned_task in (
        "was destroyed but it is pending",
        "Traceback",
        "Exception ignored",
    ):
        assert sign_of_an_unowned_task not in log
