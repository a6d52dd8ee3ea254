"""The control plane over the channel layer: a credentials change acts at once, everywhere.

A revoked key, a removed member: every process of the service forgets what its
authentication cache kept and checks that workspace's open connections again at once,
instead of waiting for the periodic re-check (``EVENTS_WS_RECHECK_SECS``) or the cache's
expiry (``EVENTS_AUTH_CACHE_SECS``), both set to an hour here so that only the control
plane can explain what the clients see.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.test import override_settings

from adapters import control_bus
from events.realtime import control
from kernel import tasks
from tests.conftest import REDIS_TEST_URL, flush_redis
from tests.helpers import connect, eventually, next_frames, ws_client
from tests.servers import Deployment, deployment, manage
from tests.test_recheck import closed_with
from workspaces.keys import create_api_key, revoke_api_key
from workspaces.models import Membership, Workspace

AN_HOUR = "3600"


async def emit_with(running: Deployment, index: int, key: str) -> int:
    async with httpx.AsyncClient(base_url=running.http(index)) as client:
        response = await client.post(
            "/v2/workspaces/acme/events",
            content=json.dumps({"events": [{"type": "check"}]}),
            headers={"X-Api-Key": key, "Content-Type": "application/json"},
        )
    return response.status_code


async def close_code(socket, within: float = 10) -> int | None:
    try:
        async with asyncio.timeout(within):
            async for _frame in socket:
                pass
    except websockets.ConnectionClosed:
        pass
    except TimeoutError:
        return None
    return socket.close_code


@pytest.fixture(scope="module")
def slow_to_notice():
    """Two processes sharing Redis that would notice a revocation only after an hour."""
    flush_redis()
    with deployment(
        2,
        server="uvicorn",
        REDIS_URL=REDIS_TEST_URL,
        EVENTS_WS_RECHECK_SECS=AN_HOUR,
        EVENTS_AUTH_CACHE_SECS=AN_HOUR,
    ) as running:
        yield running
    flush_redis()


async def test_a_key_revoked_by_a_command_is_refused_and_disconnected_on_every_process(
    slow_to_notice,
):
    running = slow_to_notice
    doomed = manage(running.env, "createapikey", "acme", "--name", "doomed")
    prefix = doomed.split("_")[1]
    async with (
        websockets.connect(running.ws(1, f"apiKey={doomed}&types=none")) as theirs,
        websockets.connect(running.ws(1, f"apiKey={running.key}&types=none")) as others,
    ):
        assert await emit_with(running, 0, doomed) == 201  # process 0 now keeps the key
        await sync_to_async(manage)(running.env, "revokeapikey", prefix)

        assert await close_code(theirs) == 4401
        await eventually(lambda: _refused(running, doomed))
        assert await _refused(running, doomed)
        # Nobody else is touched: the other key's socket and requests go on.
        await others.send(json.dumps({"op": "ping"}))
        assert json.loads(await asyncio.wait_for(others.recv(), 10))["op"] == "pong"
        assert await emit_with(running, 1, running.key) == 201


async def _refused(running: Deployment, key: str) -> bool:
    return await emit_with(running, 0, key) == 401 and await emit_with(running, 1, key) == 401


# --- in one process: the embedded mode's in-memory channel layer ------------------------


@pytest.fixture
async def listening():
    """This test's event loop runs the control listener, as a service process does."""
    control_bus.install()
    await tasks.ensure_started()
    yield
    await tasks.stop_all()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("broker", "listening")
@override_settings(EVENTS_WS_RECHECK_SECS=3600)
async def test_a_revoked_key_is_disconnected_at_once_in_the_embedded_mode(workspace):
    key, secret = await sync_to_async(create_api_key)("acme", ["consume", "emit"])
    client = await connect(secret)
    await client.send_json_to({"op": "ping"})
    assert await next_frames(client, 1, op="pong")

    await sync_to_async(revoke_api_key)(key)

    assert await closed_with(client) == 4401


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("broker", "listening")
@override_settings(EVENTS_WS_RECHECK_SECS=3600)
async def test_a_removed_member_is_disconnected_at_once(make_member):
    from workspaces.tokens import mint_token

    await sync_to_async(make_member)("u-gone", "editor")
    client = ws_client(query=f"token={mint_token('u-gone')}")
    assert (await client.connect(timeout=10))[0]

    await sync_to_async(Membership.objects.filter(user_id="u-gone").delete)()

    assert await closed_with(client) == 4403


# --- hostile control messages -----------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "not a dict",
        {"kind": "credentials.changed", "workspace": "x" * 100_000},  # huge
        {"kind": "credentials.changed", "workspace": {"nested": {"deeper": ["acme"]}}},  # nested
        {"kind": "credentials.changed", "workspace": "acme\n*{}()" * 3},  # pathological
        {"kind": "unknown.kind", "workspace": "acme"},  # malformed
        {f"field{n}": "v" for n in range(100)},
    ],
    ids=["not-a-dict", "huge", "nested", "pathological", "unknown-kind", "many-fields"],
)
async def test_a_malformed_control_message_is_ignored_and_logged(message, caplog):
    seen: list[dict] = []
    control.on(control.CREDENTIALS_CHANGED, seen.append)
    try:
        await control.deliver(message)
        good = {"type": "control.message", "kind": "credentials.changed", "workspace": "acme"}
        await control.deliver(good)
    finally:
        control._handlers[control.CREDENTIALS_CHANGED].remove(seen.append)
    assert seen == [{"kind": "credentials.changed", "workspace": "acme"}]
    assert "ignored a malformed control message" in caplog.text


# --- what the review found ----------------------------------------------------------------


async def test_a_change_during_a_check_is_checked_again():
    """The check under way may have read the credentials just before they changed."""
    from events.realtime.recheck import Recheck

    reading, answer, second = asyncio.Event(), asyncio.Event(), asyncio.Event()
    checks: list[int] = []

    async def check() -> bool:
        checks.append(len(checks))
        if len(checks) == 2:
            second.set()
        reading.set()
        await answer.wait()
        return True

    recheck = Recheck(3600, check, workspace_id="acme")
    recheck.start()
    recheck.now()
    await asyncio.wait_for(reading.wait(), 5)
    recheck.now()  # the credentials change while the first check reads them
    answer.set()
    await asyncio.wait_for(second.wait(), 5)
    recheck.stop()
    assert checks == [0, 1]


@pytest.mark.django_db(transaction=True)
async def test_deleting_a_workspace_with_many_keys_is_one_message(workspace):
    sent: list[dict] = []

    class Recording:
        async def send(self, message):
            sent.append(message)

    for n in range(5):
        await sync_to_async(create_api_key)("acme", ["consume"], name=f"k{n}")
    control.use(Recording())
    try:
        await sync_to_async(Workspace.objects.filter(slug=workspace).delete)()
    finally:
        control_bus.install()
    assert sent == [{"kind": "credentials.changed", "workspace": "acme"}]


def test_a_lookup_that_began_before_a_change_keeps_nothing():
    from workspaces import authcache

    with override_settings(EVENTS_AUTH_CACHE_SECS=60):
        before = authcache.KEYS.generation
        authcache.forget_all()  # the key was revoked meanwhile
        authcache.KEYS.put("digest", "the key as it was", looked_up_in=before)
        assert authcache.KEYS.get("digest") is None
        authcache.KEYS.put("digest", "the key as it is", looked_up_in=authcache.KEYS.generation)
        assert authcache.KEYS.get("digest") == "the key as it is"
        authcache.forget_all()


LAYER_PREFIX = "['default']['CONFIG']['prefix']"


@pytest.mark.parametrize(
    ("redis_url", "service", "prefix"),
    [
        ("redis://127.0.0.1:6379/3", "events", "events:layer:events:3"),
        ("redis://127.0.0.1:6379/4", "events", "events:layer:events:4"),
        ("redis://127.0.0.1:6379", "billing-events", "events:layer:billing-events:0"),
    ],
)
def test_deployments_sharing_a_redis_server_do_not_hear_each_other(
    tmp_path, redis_url, service, prefix
):
    """Redis pub/sub ignores the database number: the channel layer's prefix names it."""
    from tests.test_safe_defaults import SECRETS
    from tests.test_safe_defaults import manage as operator_manage

    shown = operator_manage(
        tmp_path,
        {**SECRETS, "REDIS_URL": redis_url, "EVENTS_SERVICE_NAME": service},
        "shell",
        "--no-imports",
        "-c",
        f"from django.conf import settings; print(settings.CHANNEL_LAYERS{LAYER_PREFIX})",
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == prefix
