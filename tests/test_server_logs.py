"""No secret from a query string reaches a log line, under uvicorn and under Daphne.

Browsers pass WebSocket credentials as ``?apiKey=`` or ``?token=``; the
servers' own loggers (uvicorn's handshake line, Daphne's access log) print
the request line. These tests start the real servers and read what they wrote.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets

from tests.servers import deployment

SERVERS = ["uvicorn", "daphne"]
# Not a timing assertion: only so that a server that never answers fails the test.
HANG_GUARD_SECS = 30


@pytest.fixture(params=SERVERS)
def server_output(request, tmp_path):
    """A running server of each kind, and the file its stdout and stderr go to."""
    output = tmp_path / "server.log"
    with deployment(1, server=request.param, output=output) as running:
        yield running, output, request.param


async def test_no_query_string_secret_reaches_the_servers_output(server_output, make_token):
    running, output, _ = server_output
    token = make_token("u-1", "viewer")
    url = running.ws(0, f"apiKey={running.key}&types=orders.*")
    async with websockets.connect(url) as socket:
        await socket.send('{"op": "ping"}')
        assert "pong" in await asyncio.wait_for(socket.recv(), HANG_GUARD_SECS)
    async with websockets.connect(running.ws(0, f"token={token}&types=orders.*")) as socket:
        await socket.send('{"op": "ping"}')
        assert "pong" in await asyncio.wait_for(socket.recv(), HANG_GUARD_SECS)
    refused = "evk_0123456789ab_not-a-real-key-but-a-secret-all-the-same"
    with pytest.raises(websockets.ConnectionClosed):
        async with websockets.connect(running.ws(0, f"apiKey={refused}")) as socket:
            await socket.recv()
    async with httpx.AsyncClient(base_url=running.http(0)) as client:
        polled = await client.get(
            f"/v2/workspaces/acme/events/poll?timeout=0&access_token={token}&api_key=plainsecret9"
        )
    assert polled.status_code == 401
    logged = output.read_text()
    assert "/v2/workspaces/acme/events" in logged  # the lines are there, their secrets not
    for secret in (running.key, token, refused, "plainsecret9"):
        assert secret not in logged
    secret_part = running.key.split("_", 2)[2]  # evk_<prefix>_<secret>: the secret may hold a _
    assert secret_part not in logged


async def test_a_websocket_query_string_over_the_limit_is_refused_with_4400(server_output):
    running, _, server = server_output
    url = running.ws(0, f"apiKey={running.key}&types=" + "a" * 5000)
    async with websockets.connect(url) as socket:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), HANG_GUARD_SECS)
    assert closed.value.rcvd.code == 4400
    if server == "uvicorn":  # Daphne sends close codes without their reason
        assert "query string is longer than 4096" in closed.value.rcvd.reason
