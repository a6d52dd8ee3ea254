"""A client too slow to read is disconnected with 4008 (contract section 3).

Real servers on loopback ports (Daphne and uvicorn, to whose sockets the service
writes event frames itself) and a raw client that stops reading after the
handshake: the service must cut it off instead of buffering without bound,
and the close frame, queued after what was already sent, says 4008.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.helpers import close_code, open_raw
from tests.servers import SETUPS, deployment

BUFFER_MAX_BYTES = 256 * 1024
EVENT_PAD_BYTES = 8_000
BATCH = 50
# More than the unsent-bytes limit plus what the kernel's buffers hold.
BATCHES = 60
# A client paused this long (a busy main thread, a GC pause, a laptop waking up) still reads
# its 4008: the service holds the close for 10 s (Autobahn's own default would drop it after 1 s).
PAUSE_SECS = 3


@pytest.fixture(params=sorted(SETUPS))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    """One service process (embedded broker) with a small send buffer; yields its port and a key.

    The smaller the buffer, the sooner the client reaches the close frame after
    the cut-off: Autobahn (Daphne) drops a connection whose close is not
    answered within a second.
    """
    settings = {"REDIS_URL": "", "EVENTS_WS_BUFFER_MAX_BYTES": str(BUFFER_MAX_BYTES)}
    with deployment(1, **SETUPS[request.param], **settings) as running:
        yield running.ports[0], running.key


async def emit_until_cut_off(port: int, key: str) -> None:
    """Emit big events until the service counts a slow consumer (at most BATCHES batches).

    The client must read soon after the cut-off: a server gives a close
    handshake only so long before it drops the connection.
    """
    event = {"type": "big", "payload": "x" * EVENT_PAD_BYTES, "options": {"persist": False}}
    body = orjson.dumps({"events": [event] * BATCH})
    headers = {"X-Api-Key": key, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for _ in range(BATCHES):
            response = await client.post(
                "/v2/workspaces/acme/events", content=body, headers=headers
            )
            assert response.status_code == 201, response.text
            metrics = (await client.get("/metrics")).text
            if "\nevents_slow_consumers_total 1.0" in metrics:
                return


async def test_it_disconnects_a_client_that_stops_reading_with_4008(server):
    port, key = server
    reader, writer = await open_raw(port, key)
    await emit_until_cut_off(port, key)
    assert await close_code(reader) == 4008
    writer.close()


async def test_a_client_that_reads_again_seconds_later_still_sees_4008(server):
    port, key = server
    reader, writer = await open_raw(port, key)
    await emit_until_cut_off(port, key)
    await asyncio.sleep(PAUSE_SECS)  # the client is away, not the clock of an assertion
    assert await close_code(reader) == 4008
    writer.close()
