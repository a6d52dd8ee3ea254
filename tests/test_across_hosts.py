"""Two hosts whose shared state is one PostgreSQL database (issue 13's acceptance).

Each Daphne process has its own ``EVENTS_VAR_DIR`` (no SQLite file in common, no
development secret of a shared folder); the shared state is one PostgreSQL database
of this run. A client talks to them over real sockets: a key created through one is
accepted by the other, an event emitted on one reaches a subscriber of the other, and
a key revoked through one host's admin is refused by the other and loses its open
WebSocket there. With Redis the control plane tells the other host at once; with
nothing but PostgreSQL in common, the other host refuses the key within
``EVENTS_AUTH_CACHE_SECS`` and closes the socket at its next credentials re-check
(``EVENTS_WS_RECHECK_SECS``), both 1 s here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest
import websockets

from tests.conftest import REDIS_TEST_URL, flush_redis
from tests.helpers import eventually
from tests.postgres import postgres_database, query
from tests.servers import Deployment, hosts, manage
from tests.test_scaled import emit, receive_events

OPERATOR, PASSWORD = "operator", "operator-password-for-tests-only"


@contextlib.contextmanager
def two_hosts_sharing(**shared: str):
    """Two hosts and their database; an operator who may use the admin."""
    with (
        postgres_database("hosts") as url,
        hosts(
            2, DATABASE_URL=url, EVENTS_AUTH_CACHE_SECS="1", EVENTS_WS_RECHECK_SECS="1", **shared
        ) as running,
    ):
        env = {**running.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
        manage(env, "createsuperuser", "--noinput", "--username", OPERATOR, "--email", "op@x.test")
        yield running, url


@pytest.fixture(scope="module")
def two_hosts():
    """Sharing PostgreSQL and Redis (the broker, the control plane)."""
    flush_redis()
    with two_hosts_sharing(REDIS_URL=REDIS_TEST_URL) as running:
        yield running
    flush_redis()


@pytest.fixture(scope="module")
def two_hosts_apart():
    """Sharing PostgreSQL only: each its own in-memory broker and control plane."""
    with two_hosts_sharing(REDIS_URL="") as running:
        yield running


def csrf_token(client: httpx.AsyncClient) -> str:
    return client.cookies["csrftoken"]


async def revoke_in_the_admin(running: Deployment, index: int, key_id: int) -> None:
    """Log in to host ``index``'s admin and revoke the key with the admin's action."""
    async with httpx.AsyncClient(base_url=running.http(index)) as admin:
        await admin.get("/admin/login/")
        login = await admin.post(
            "/admin/login/",
            data={
                "username": OPERATOR,
                "password": PASSWORD,
                "csrfmiddlewaretoken": csrf_token(admin),
                "next": "/admin/",
            },
        )
        assert login.status_code == 302, login.text
        revoked = await admin.post(
            "/admin/workspaces/apikey/",
            data={
                "action": "revoke_keys",
                "_selected_action": str(key_id),
                "csrfmiddlewaretoken": csrf_token(admin),
            },
        )
        assert revoked.status_code == 302, revoked.text


async def poll_status(running: Deployment, index: int, key: str) -> int:
    async with httpx.AsyncClient(base_url=running.http(index)) as client:
        response = await client.get(
            "/v2/workspaces/acme/events/poll", params={"timeout": "0"}, headers={"X-Api-Key": key}
        )
    return response.status_code


async def close_code(socket) -> int | None:
    """Read frames until the server closes the socket; its close code."""
    try:
        async with asyncio.timeout(60):
            async for _ in socket:
                pass
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return None
    return socket.close_code


async def test_a_key_created_on_one_host_serves_events_emitted_on_the_other(two_hosts):
    running, _ = two_hosts
    async with websockets.connect(running.ws(1, f"apiKey={running.key}&types=orders.*")) as far:
        sent = await emit(running, 0, *[{"type": "orders.created", "payload": n} for n in range(5)])
        got = await receive_events(far, 5, "orders.created")
    assert [e["id"] for e in got] == [e["id"] for e in sent]


@pytest.mark.parametrize("shared", ["two_hosts", "two_hosts_apart"])
async def test_a_key_revoked_on_one_host_is_refused_and_disconnected_on_the_other(request, shared):
    running, url = request.getfixturevalue(shared)
    key = manage(running.env, "createapikey", "acme", "--name", "to-revoke")
    [(key_id,)] = query(url, "SELECT id FROM workspaces_apikey WHERE name = 'to-revoke'")
    assert await poll_status(running, 1, key) == 200  # host 1 keeps the key for a second
    async with websockets.connect(running.ws(1, f"apiKey={key}&types=none")) as socket:
        await socket.send(json.dumps({"op": "ping"}))
        await revoke_in_the_admin(running, 0, key_id)
        assert await poll_status(running, 0, key) == 401  # the host that revoked it: at once

        async def refused_on_host_1() -> bool:
            return await poll_status(running, 1, key) == 401

        await eventually(refused_on_host_1)
        assert await poll_status(running, 1, key) == 401
        assert await close_code(socket) == 4401


async def history_ids(running: Deployment, index: int, event_type: str) -> set[str]:
    """The ids of the events of ``event_type`` that host ``index``'s history holds."""
    async with httpx.AsyncClient(base_url=running.http(index)) as client:
        response = await client.get(
            "/v2/workspaces/acme/events",
            params={"types": event_type, "limit": "100"},
            headers={"X-Api-Key": running.key},
        )
    assert response.status_code == 200, response.text
    return {event["id"] for event in response.json()["result"]["events"]}


async def test_the_sqlite_histories_of_the_hosts_hold_every_event_once_between_them(two_hosts):
    # With DATABASE_URL on PostgreSQL each host's SQLite history is a file of its own, and
    # the archivers share the work: one host's history holds its share (docs/OPERATIONS.md).
    running, _ = two_hosts
    sent = await emit(running, 1, *[{"type": "archived.one", "payload": n} for n in range(20)])

    async def archived() -> bool:
        held = [await history_ids(running, index, "archived.one") for index in (0, 1)]
        return sum(len(ids) for ids in held) >= len(sent)

    await eventually(archived)
    first, second = [await history_ids(running, index, "archived.one") for index in (0, 1)]
    assert first | second == {event["id"] for event in sent}
    assert not first & second
