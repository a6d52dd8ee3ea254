"""Operations endpoints: /sys/healthcheck, /sys/logging, /sys/heapdump (section 5)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import AsyncClient, override_settings

from events.broker import get_archive_queue, get_live_stream, reset_broker
from events.realtime import control, outbox
from kernel.ids import ZERO_ID
from sysadmin import heapdump, loglevels
from tests.conftest import REDIS_TEST_URL, flush_redis
from tests.helpers import eventually
from tests.servers import deployment

pytestmark = pytest.mark.django_db(transaction=True)


async def platform_events(event_type: str) -> list[dict]:
    """The audit events of the platform workspace, once the outbox has published them."""
    async with asyncio.timeout(10):
        await outbox.flush()
    page = await get_live_stream().read_after("platform", ZERO_ID, count=1000)
    return [event for event in page.events if event["type"] == event_type]


def as_admin(token: str, **headers: str) -> dict[str, str]:
    return {"X-Admin-Token": token, **headers}


@pytest.fixture
def staff_client(transactional_db: None) -> AsyncClient:
    user = get_user_model().objects.create_user("ops", password="pw-ops-0123", is_staff=True)
    client = AsyncClient()
    client.force_login(user)
    return client


@pytest.fixture
def member_client(transactional_db: None) -> AsyncClient:
    user = get_user_model().objects.create_user("bob", password="pw-bob-0123")
    client = AsyncClient()
    client.force_login(user)
    return client


@pytest.fixture
def restore_levels() -> Iterator[None]:
    """Put back the levels a test changes."""
    saved = {name: logging.getLogger(name).level for name in ("events", "sysadmin.newname")}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def dump_dir(tmp_path: Path) -> Iterator[Path]:
    """Heap dumps go to a temporary directory; the once-a-minute gate starts open."""
    heapdump.gate.reset()
    with override_settings(HEAPDUMP_DIR=str(tmp_path), REDIS_URL=""):
        reset_broker()
        yield tmp_path
        reset_broker()
    heapdump.gate.reset()


# --- /sys/healthcheck --------------------------------------------------------


async def test_the_healthcheck_answers_200_while_the_broker_and_history_answer(broker):
    response = await AsyncClient().get("/sys/healthcheck")
    assert response.status_code == 200
    body = response.json()
    assert body["healthy"] is True
    assert body["broker"] == "ok"
    assert body["history"] == "ok"


async def test_the_healthcheck_answers_503_naming_a_failing_broker(broker, monkeypatch):
    async def refuse() -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(get_archive_queue(), "ping", refuse)
    response = await AsyncClient().get("/sys/healthcheck")
    assert response.status_code == 503
    assert response.json()["healthy"] is False
    assert response.json()["broker"] == "failing"
    assert response.json()["history"] == "ok"


async def test_the_healthcheck_answers_within_a_second_when_the_history_hangs(broker, monkeypatch):
    async def hang() -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr("sysadmin.health.ping_history", hang)
    response = await asyncio.wait_for(AsyncClient().get("/sys/healthcheck"), 1.5)
    assert response.status_code == 503
    assert response.json()["history"] == "timeout"
    assert response.json()["broker"] == "ok"


# --- who may use /sys/logging and /sys/heapdump --------------------------------


@pytest.mark.parametrize(("method", "path"), [("get", "/sys/logging"), ("post", "/sys/heapdump")])
async def test_it_answers_401_without_credentials(admin_token, method, path):
    response = await getattr(AsyncClient(), method)(path)
    assert response.status_code == 401
    assert response.json()["error"] == "NotAuthenticated"


async def test_it_answers_401_to_a_wrong_admin_token(admin_token):
    response = await AsyncClient().get("/sys/logging", headers=as_admin("wrong"))
    assert response.status_code == 401


async def test_no_token_is_accepted_when_none_is_configured():
    with override_settings(EVENTS_ADMIN_TOKEN=""):
        response = await AsyncClient().get("/sys/logging", headers=as_admin(""))
    assert response.status_code == 401


async def test_it_answers_403_to_a_signed_in_user_who_is_not_staff(member_client):
    response = await member_client.get("/sys/logging")
    assert response.status_code == 403
    assert response.json()["error"] == "PermissionDenied"


async def test_a_staff_session_may_read_the_levels(staff_client):
    response = await staff_client.get("/sys/logging")
    assert response.status_code == 200


async def test_a_staff_session_must_pass_the_csrf_check_to_change_levels(transactional_db):
    user = await sync_to_async(get_user_model().objects.create_user)("ops2", is_staff=True)
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(user)
    body = json.dumps({"logger": "events", "level": "DEBUG"})
    response = await client.put("/sys/logging", body, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]


# --- /sys/logging --------------------------------------------------------------


async def test_it_lists_the_level_of_every_logger(admin_token):
    response = await AsyncClient().get("/sys/logging", headers=as_admin(admin_token))
    loggers = response.json()["loggers"]
    assert loggers["root"] == logging.getLevelName(logging.getLogger().level)
    assert loggers["events"] == logging.getLevelName(
        logging.getLogger("events").getEffectiveLevel()
    )
    assert "events.access" in loggers


async def test_it_reads_one_logger(admin_token):
    response = await AsyncClient().get(
        "/sys/logging", {"logger": "events"}, headers=as_admin(admin_token)
    )
    assert response.json() == {"loggers": {"events": loglevels.level_of("events")}}


async def test_a_put_changes_a_level_at_run_time(broker, admin_token, restore_levels):
    response = await AsyncClient().put(
        "/sys/logging",
        json.dumps({"logger": "events", "level": "debug"}),
        content_type="application/json",
        headers=as_admin(admin_token),
    )
    assert response.status_code == 200
    assert response.json() == {"loggers": {"events": "DEBUG"}}
    assert logging.getLogger("events.websocket").isEnabledFor(logging.DEBUG)
    response = await AsyncClient().get(
        "/sys/logging", {"logger": "events"}, headers=as_admin(admin_token)
    )
    assert response.json() == {"loggers": {"events": "DEBUG"}}


async def test_a_put_may_name_a_new_logger(broker, admin_token, restore_levels):
    response = await AsyncClient().put(
        "/sys/logging",
        json.dumps({"logger": "sysadmin.newname", "level": "ERROR"}),
        content_type="application/json",
        headers=as_admin(admin_token),
    )
    assert response.json() == {"loggers": {"sysadmin.newname": "ERROR"}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"logger": "events", "level": "LOUD"}, "level"),
        ({"logger": "events"}, "level"),
        ({"logger": "bad name!", "level": "INFO"}, "logger"),
        ({"logger": 7, "level": "INFO"}, "logger"),
    ],
)
async def test_a_bad_put_answers_400(admin_token, body, field):
    response = await AsyncClient().put(
        "/sys/logging",
        json.dumps(body),
        content_type="application/json",
        headers=as_admin(admin_token),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationError"
    assert response.json()["details"] == {"field": field}


async def test_a_level_change_is_audited_in_the_platform_workspace(
    broker, admin_token, restore_levels
):
    await AsyncClient().put(
        "/sys/logging",
        json.dumps({"logger": "events", "level": "WARNING"}),
        content_type="application/json",
        headers=as_admin(admin_token, **{"X-Correlation-Id": "corr-level"}),
    )
    [event] = await platform_events("sys.logging.updated")
    assert event["payload"]["logger"] == "events"
    assert event["payload"]["level"] == "WARNING"
    assert event["source"]["correlationId"] == "corr-level"
    assert event["source"]["userId"] == "admin-token"
    assert event["source"]["workspaceId"] == "platform"


ADMIN = "test-admin-token-for-processes-0123"


async def level_on(running, index: int, name: str) -> str:
    async with httpx.AsyncClient(base_url=running.http(index)) as client:
        response = await client.get(f"/sys/logging?logger={name}", headers=as_admin(ADMIN))
    assert response.status_code == 200, response.text
    return response.json()["loggers"][name]


async def test_a_change_reaches_every_service_process():
    flush_redis()
    settings = {"REDIS_URL": REDIS_TEST_URL, "EVENTS_ADMIN_TOKEN": ADMIN}
    with deployment(2, server="uvicorn", **settings) as running:
        async with httpx.AsyncClient(base_url=running.http(0)) as client:
            response = await client.put(
                "/sys/logging",
                json={"logger": "events.hub", "level": "DEBUG"},
                headers=as_admin(ADMIN),
            )
        assert response.status_code == 200
        assert response.json() == {"loggers": {"events.hub": "DEBUG"}}
        await eventually(lambda: _level_is(running, 1, "events.hub", "DEBUG"))
        assert await level_on(running, 1, "events.hub") == "DEBUG"
        # A process that starts later applies what was set before it.
        await asyncio.to_thread(running.restart, 1)
        assert await level_on(running, 1, "events.hub") == "DEBUG"
    flush_redis()


async def _level_is(running, index: int, name: str, level: str) -> bool:
    return await level_on(running, index, name) == level


async def test_a_control_message_sets_the_level_in_this_process(restore_levels):
    await control.deliver({"kind": control.LOG_LEVEL_CHANGED, "logger": "events", "level": "ERROR"})
    assert logging.getLogger("events").level == logging.ERROR


@pytest.mark.parametrize(
    "change",
    [
        {"logger": "events", "level": "LOUD"},
        {"logger": "x" * 201, "level": "DEBUG"},
        {"logger": "events;rm", "level": "DEBUG"},
        {"level": "DEBUG"},
    ],
    ids=["unknown-level", "huge-name", "bad-name", "no-logger"],
)
async def test_a_bad_control_message_changes_no_level(change, restore_levels, caplog):
    before = logging.getLogger("events").level
    await control.deliver({"kind": control.LOG_LEVEL_CHANGED, **change})
    assert logging.getLogger("events").level == before
    assert "ignored a malformed" in caplog.text


# --- /sys/heapdump ---------------------------------------------------------------


async def download(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


def check_snapshot(snapshot: dict) -> None:
    """What Chrome DevTools relies on to load the file."""
    meta = snapshot["snapshot"]["meta"]
    node_width, edge_width = len(meta["node_fields"]), len(meta["edge_fields"])
    nodes, edges, strings = snapshot["nodes"], snapshot["edges"], snapshot["strings"]
    assert len(nodes) == snapshot["snapshot"]["node_count"] * node_width
    assert len(edges) == snapshot["snapshot"]["edge_count"] * edge_width
    edge_count_at = meta["node_fields"].index("edge_count")
    assert sum(nodes[edge_count_at::node_width]) == snapshot["snapshot"]["edge_count"]
    to_nodes = edges[meta["edge_fields"].index("to_node") :: edge_width]
    assert all(0 <= to < len(nodes) and to % node_width == 0 for to in to_nodes)
    name_at = meta["node_fields"].index("name")
    assert all(0 <= name < len(strings) for name in nodes[name_at::node_width])
    assert meta["node_types"][0][nodes[0]] == "synthetic"


async def test_a_heap_dump_is_a_snapshot_devtools_opens_and_one_a_minute_at_most(
    admin_token, dump_dir
):
    # One dump for the whole behaviour: a snapshot of the test process takes seconds.
    response = await AsyncClient().post(
        "/sys/heapdump", headers=as_admin(admin_token, **{"X-Correlation-Id": "corr-heap"})
    )
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert disposition.endswith('.heapsnapshot"')
    snapshot = json.loads(await download(response))
    check_snapshot(snapshot)
    assert "dict" in snapshot["strings"]
    [written] = dump_dir.glob("*.heapsnapshot")
    assert json.loads(written.read_bytes())["snapshot"] == snapshot["snapshot"]
    [event] = await platform_events("sys.heapdump.created")
    assert event["payload"]["file"] == written.name
    assert event["payload"]["nodes"] == snapshot["snapshot"]["node_count"]
    assert event["source"]["correlationId"] == "corr-heap"
    assert event["source"]["userId"] == "admin-token"
    del snapshot

    anonymous = await AsyncClient().post("/sys/heapdump")
    assert anonymous.status_code == 401
    second = await AsyncClient().post("/sys/heapdump", headers=as_admin(admin_token))
    assert second.status_code == 429
    assert second.json()["error"] == "TooManyRequests"
    assert 0 < int(second["Retry-After"]) <= 60


# --- the schema --------------------------------------------------------------------


async def test_the_operations_endpoints_are_in_the_openapi_schema():
    response = await AsyncClient().get("/v2/schema", {"format": "json"})
    paths = json.loads(response.content)["paths"]
    assert {"/sys/healthcheck", "/sys/logging", "/sys/heapdump"} <= set(paths)
    assert {"get", "put"} <= set(paths["/sys/logging"])


def test_a_heap_snapshot_survives_weak_proxies_whose_object_is_gone():
    import gc
    import weakref

    from sysadmin.heapsnapshot import node_name, node_type, take_snapshot

    class Thing:
        pass

    thing = Thing()
    proxy = weakref.proxy(thing)
    del thing
    gc.collect()
    holder = [proxy]
    assert node_type(proxy) == "object"
    assert node_name(proxy) == "ProxyType"
    snapshot = take_snapshot()
    assert snapshot["snapshot"]["node_count"] > 0
    assert holder
