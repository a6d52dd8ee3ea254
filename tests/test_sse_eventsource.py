"""Acceptance of issue 14: an EventSource nobody here wrote survives the loss of its process.

The ``eventsource`` npm package (pinned in package-lock.json) consumes a filtered stream
through a TCP forwarder (``tests/forwarder.py``: where a load balancer would stand) in
front of two service processes sharing Redis. The first process is killed (SIGKILL,
no drain); the forwarder sends new connections to the second one; the client
reconnects by itself with ``Last-Event-ID`` and goes on. Counted by event ids, it gets
every event emitted, before, during and after the switch, once and in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import REDIS_TEST_URL, flush_redis
from tests.forwarder import forwarding
from tests.servers import ROOT, SERVERS, Deployment, deployment
from tests.test_scaled import emit

SCRIPT = ROOT / "tests" / "js" / "eventsource_consumer.mjs"
PACKAGE = ROOT / "node_modules" / "eventsource" / "package.json"
BEFORE, AFTER = 10, 10
# Not a timing assertion: only so that a client that never gets there fails the test.
HANG_GUARD_SECS = 60


def require_node() -> None:
    """Skip without node and the package (scripts/bootstrap node), except in CI."""
    if shutil.which("node") and PACKAGE.exists():
        return
    reason = "node and node_modules/eventsource are needed (scripts/bootstrap node)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(params=sorted(SERVERS))
def pair(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    """Two processes of each server on Redis; a client waits 200 ms before reconnecting."""
    require_node()
    flush_redis()
    with deployment(
        2, server=request.param, REDIS_URL=REDIS_TEST_URL, EVENTS_SSE_RETRY_MS="200"
    ) as running:
        yield running
    flush_redis()


class Client:
    """The node process, read line by line (one JSON object each)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[dict[str, Any]] = []

    async def until(self, wanted: str, count: int = 1) -> list[dict[str, Any]]:
        """Read until ``count`` lines with the key ``wanted`` came in all; return those."""
        assert self.process.stdout is not None
        async with asyncio.timeout(HANG_GUARD_SECS):
            while sum(wanted in line for line in self.seen) < count:
                raw = await self.process.stdout.readline()
                assert raw, f"the client ended: {self.seen}"
                self.seen.append(json.loads(raw))
        return [line for line in self.seen if wanted in line]


async def test_an_eventsource_client_resumes_on_another_process_with_no_gap_and_no_repeat(pair):
    running = pair
    wanted = f"t{uuid.uuid4().hex[:10]}"
    batch = [{"type": wanted, "payload": n} for n in range(BEFORE)] + [{"type": "unwanted"}]
    async with forwarding(running.ports[0]) as forwarder:
        url = (
            f"http://127.0.0.1:{forwarder.port}/v2/workspaces/acme/events/stream"
            f"?apiKey={running.key}&types={wanted}"
        )
        process = await asyncio.create_subprocess_exec(
            "node", str(SCRIPT), url, str(BEFORE + AFTER), stdout=asyncio.subprocess.PIPE
        )
        client = Client(process)
        try:
            await client.until("open")
            sent = await emit(running, 1, *batch)
            await client.until("id", BEFORE)
            forwarder.target = running.ports[1]
            running.processes[0].kill()
            await asyncio.to_thread(running.processes[0].wait)
            # Emitted while the client has no connection: it finds them when it is back.
            sent += await emit(
                running, 1, *[{"type": wanted, "payload": n} for n in range(BEFORE, BEFORE + AFTER)]
            )
            received = await client.until("id", BEFORE + AFTER)
            assert await asyncio.wait_for(process.wait(), HANG_GUARD_SECS) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    wanted_ids = [event["id"] for event in sent if event["type"] == wanted]
    assert [line["event"]["id"] for line in received] == wanted_ids
    assert [line["id"].rpartition(":")[2] for line in received] == wanted_ids
    assert len(await client.until("open")) == 2  # it did reconnect, by itself, once
    assert await client.until("error")


# --- The same from the browser's own EventSource ---------------------------------------

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Events</title></head><body>
<h1>Events</h1><ol id="events"></ol>
<script>
window.received = []; window.opens = 0; window.errors = 0;
const source = new EventSource(new URLSearchParams(location.search).get("stream"));
source.onopen = () => { window.opens += 1; };
source.onmessage = (message) => {
  const event = JSON.parse(message.data);
  window.received.push({ id: message.lastEventId, event });
  const item = document.createElement("li");
  item.textContent = `${message.lastEventId} ${event.type} ${JSON.stringify(event.payload)}`;
  document.getElementById("events").append(item);
};
source.onerror = () => { window.errors += 1; };
</script></body></html>
"""


async def test_a_browsers_eventsource_resumes_after_its_server_stops(pair, browser):
    running = pair
    wanted = f"t{uuid.uuid4().hex[:10]}"
    async with forwarding(running.ports[0], {"/page": PAGE.encode()}) as forwarder:
        stream = f"/v2/workspaces/acme/events/stream?apiKey={running.key}&types={wanted}"
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{forwarder.port}/page?{urlencode({'stream': stream})}")
        await page.wait_for_function("window.opens === 1", timeout=HANG_GUARD_SECS * 1000)
        sent = await emit(running, 1, *[{"type": wanted, "payload": n} for n in range(BEFORE)])
        await page.wait_for_function(f"window.received.length === {BEFORE}")
        forwarder.target = running.ports[1]
        running.processes[0].terminate()  # a stop: the service ends the stream itself
        await asyncio.to_thread(running.processes[0].wait, 30)
        sent += await emit(
            running, 1, *[{"type": wanted, "payload": n} for n in range(BEFORE, BEFORE + AFTER)]
        )
        await page.wait_for_function(
            f"window.received.length >= {BEFORE + AFTER}", timeout=HANG_GUARD_SECS * 1000
        )
        received = await page.evaluate("window.received")
        # Twice or more: a kept-alive connection may take the first retry back to the
        # stopping process, which ends the stream at once.
        assert await page.evaluate("window.opens") >= 2
        await page.screenshot(path=ROOT / "docs" / "screenshots" / "sse-eventsource.png")
    assert [line["event"]["id"] for line in received] == [event["id"] for event in sent]
    assert [line["id"].rpartition(":")[2] for line in received] == [e["id"] for e in sent]
