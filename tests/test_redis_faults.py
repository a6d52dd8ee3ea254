"""Issue 11's fault test: Redis restarted with and without its data while events flow.

A real service process (tests/servers.py, its archiver in the process, SQLite history)
on a redis-server of the test's own (tests/redis_server.py). An emitter emits over
HTTP the whole time; events are counted by id in the history, searched over HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.helpers import eventually
from tests.redis_server import RedisServer, redis_server
from tests.servers import Deployment, deployment

EVENTS = "/v2/workspaces/acme/events"
EMIT_PAUSE_SECS = 0.02
MAX_EMITS = 5_000
ENOUGH = 20


@pytest.fixture
def faulty() -> Iterator[tuple[RedisServer, Deployment]]:
    """A persistent redis-server of the test's own and a service process using it."""
    with (
        redis_server(persistent=True) as server,
        deployment(1, REDIS_URL=server.url(), ARCHIVE_FLUSH_MSECS="200") as running,
    ):
        yield server, running


class Emitter:
    """Emits one event at a time over HTTP until stopped; remembers what was answered."""

    def __init__(self, running: Deployment, event_type: str) -> None:
        self.running = running
        self.event_type = event_type
        self.acked: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.stopped = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self.stopped.set()
        assert self.task is not None
        await self.task

    async def _run(self) -> None:
        headers = {"X-Api-Key": self.running.key, "Content-Type": "application/json"}
        body = json.dumps({"events": [{"type": self.event_type}]})
        async with httpx.AsyncClient(base_url=self.running.http(0), timeout=30) as client:
            for _ in range(MAX_EMITS):
                if self.stopped.is_set():
                    return
                response = await client.post(EVENTS, content=body, headers=headers)
                self.statuses[response.status_code] += 1
                if response.status_code == 201:
                    self.acked += [event["id"] for event in response.json()["events"]]
                await asyncio.sleep(EMIT_PAUSE_SECS)

    async def acked_at_least(self, count: int) -> None:
        await eventually(lambda: _true(len(self.acked) >= count))
        assert len(self.acked) >= count, self.statuses

    async def saw(self, status: int) -> None:
        await eventually(lambda: _true(self.statuses[status] > 0))
        assert self.statuses[status], self.statuses


async def _true(value: bool) -> bool:
    return value


async def archived(running: Deployment, event_type: str) -> list[str]:
    """The ids of every stored event of the type, page by page, as a client would."""
    ids: list[str] = []
    params = {"types": event_type, "limit": "500", "sort": "asc"}
    async with httpx.AsyncClient(base_url=running.http(0), timeout=30) as client:
        while True:
            response = await client.get(EVENTS, params=params, headers={"X-Api-Key": running.key})
            assert response.status_code == 200, response.text
            result = response.json()["result"]
            ids += [event["id"] for event in result["events"]]
            if not result["next"]:
                return ids
            params["cursor"] = result["next"]


async def all_archived(running: Deployment, event_type: str, expected: list[str]) -> list[str]:
    """Wait until the history holds as many events of the type as expected; return them."""
    found: list[str] = []

    async def check() -> bool:
        found[:] = await archived(running, event_type)
        return len(found) >= len(expected)

    await eventually(check)
    return found


async def poll(running: Deployment, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=running.http(0), timeout=30) as client:
        return await client.get(f"{EVENTS}/poll", params=params, headers={"X-Api-Key": running.key})


async def test_a_redis_restart_with_its_data_loses_and_repeats_nothing(faulty):
    server, running = faulty
    emitter = Emitter(running, "flow")
    emitter.start()
    await emitter.acked_at_least(ENOUGH)
    server.stop()
    await emitter.saw(503)
    down = await poll(running, timeout="1")
    assert down.status_code == 503
    assert down.json()["error"] == "ServiceUnavailable"
    assert int(down.headers["Retry-After"]) > 0
    server.start()  # the same folder: its append-only file
    before = len(emitter.acked)
    await emitter.acked_at_least(before + ENOUGH)
    await emitter.stop()
    assert set(emitter.statuses) <= {201, 503}, emitter.statuses
    found = await all_archived(running, "flow", emitter.acked)
    assert sorted(Counter(found).values()) == [1] * len(found)  # each exactly once
    assert sorted(found) == sorted(emitter.acked)


async def test_a_redis_reset_archives_what_follows_and_refuses_old_positions(faulty):
    server, running = faulty
    emitter = Emitter(running, "before")
    emitter.start()
    await emitter.acked_at_least(ENOUGH)
    await emitter.stop()
    position = (await poll(running, timeout="0")).json()["cursor"]
    server.restart(keep_data=False)  # killed, its data gone: a cache-like Redis
    after = Emitter(running, "after")
    after.start()
    await after.acked_at_least(ENOUGH)
    await after.stop()
    assert set(after.statuses) <= {201, 503}, after.statuses
    found = await all_archived(running, "after", after.acked)
    assert sorted(found) == sorted(after.acked)
    resumed = await poll(running, cursor=position, timeout="1")
    assert resumed.status_code == 410, resumed.text
    assert resumed.json()["error"] == "CursorExpired"
    query = f"apiKey={running.key}&lastEventId={position}"
    async with websockets.connect(running.ws(0, query)) as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4410
