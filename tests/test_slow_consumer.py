"""A client too slow to read is disconnected with 4008 (contract section 3).

Real servers on loopback ports (Daphne, and uvicorn, whose sends wait when the
client does not read) and a raw client that stops reading after the
handshake: the service must cut it off instead of buffering without bound,
and the close frame, queued after what was already sent, says 4008.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.helpers import close_code, open_raw
from tests.servers import ROOT, free_port, manage

OUTBOX_MAX = 50
EVENT_PAD_BYTES = 8_000
BATCH = 50
# More than Daphne's write-buffer limit (8 MiB) plus what the kernel's buffers hold.
BATCHES = 60
SERVERS = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}"],
    "uvicorn": [
        *("-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"),
        *("--loop", "uvloop", "--ws", "websockets-sansio"),
    ],
}


def _wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    """One service process (embedded broker) with a small outbox; yields its port and a key."""
    with tempfile.TemporaryDirectory() as var_dir:
        env = {**os.environ, "EVENTS_VAR_DIR": var_dir, "DJANGO_DEBUG": "true", "REDIS_URL": ""}
        env["EVENTS_WS_OUTBOX_MAX"] = str(OUTBOX_MAX)
        manage(env, "migrate", "--verbosity", "0")
        key = manage(env, "createapikey", "acme", "--name", "tests")
        port = free_port()
        argv = [arg.format(port=port) for arg in SERVERS[request.param]]
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, *argv, "eventsproject.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_listening(port, process)
            yield port, key
        finally:
            process.terminate()
            process.wait(timeout=10)


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
