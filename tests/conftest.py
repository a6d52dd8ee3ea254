"""Shared fixtures: a workspace with members and keys, and the broker under test.

Behaviour tests that take ``broker`` run twice: on the embedded in-memory
broker and on the real Redis server (``REDIS_TEST_URL``, database 15 by
default, flushed around each test).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from django.test import override_settings

from events.broker import Backend, memory_backend, redis_backend, reset_broker
from events.broker.redis import RedisLiveStream
from events.realtime.idempotency import reset_store
from tests.redis_server import RedisServer, redis_server
from tests.servers import Deployment, deployment
from workspaces.keys import create_api_key, get_or_create_workspace

REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    client.close()


# scripts/test's PostgreSQL pass runs the tenant tests on one broker: the database is what differs.
BROKERS = os.environ.get("EVENTS_TEST_BROKERS", "memory,redis").split(",")


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on each broker; yields its name."""
    url = REDIS_TEST_URL if request.param == "redis" else ""
    if url:
        flush_redis()
    with override_settings(REDIS_URL=url):
        reset_broker()
        reset_store()
        yield request.param
        reset_broker()
        reset_store()
    if url:
        flush_redis()


@pytest.fixture(params=[True, False], ids=["direct", "asgi"])
def direct_writes(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Run the test with the fast paths on and off (``EVENTS_DIRECT_WRITES``); yields which."""
    with override_settings(EVENTS_DIRECT_WRITES=request.param):
        yield request.param


BUFFER_SIZE = 10  # the live buffer of the ports under contract (``backend``)


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, monkeypatch) -> AsyncIterator[Backend]:
    """Both ports of one broker, built as the service builds them, in memory and on Redis.

    The contract tests (tests/test_*_contract.py) run on each; new streams are found at
    once, and the live buffer is ``BUFFER_SIZE`` events.
    """
    monkeypatch.setattr("events.broker.redis_archive.DISCOVERY_SECS", 0.0)
    with override_settings(EVENTS_BUFFER_SIZE=BUFFER_SIZE, ARCHIVE_MAX_BACKLOG=10_000):
        if request.param == "memory":
            yield memory_backend()
            return
        flush_redis()
        built = redis_backend(REDIS_TEST_URL)
        yield built
        assert isinstance(built.stream, RedisLiveStream)
        await built.stream.redis.aclose()  # the client both ports share
        flush_redis()


@pytest.fixture
def redis_broker() -> Iterator[str]:
    """Run the test on the Redis broker only (several service processes)."""
    flush_redis()
    with override_settings(REDIS_URL=REDIS_TEST_URL):
        reset_broker()
        yield REDIS_TEST_URL
        reset_broker()
    flush_redis()


@pytest.fixture(scope="module")
def two_processes() -> Iterator[Deployment]:
    """Two Daphne processes sharing the test Redis (``tests/servers.py``), for a module."""
    flush_redis()
    with deployment(2, REDIS_URL=REDIS_TEST_URL) as running:
        yield running
    flush_redis()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """The service's broker is a redis-server of this test's (no persistence), to stop."""
    with redis_server(persistent=False) as server, override_settings(REDIS_URL=server.url()):
        reset_broker()
        yield server
        reset_broker()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker) -> Iterator[None]:
    """pytest-django's test databases; on PostgreSQL dropped even with connections left open.

    ORM calls made through ``sync_to_async`` leave a connection in each worker thread; the
    server would refuse to drop a database still in use (``DATABASE_URL`` set: scripts/test).
    """
    yield
    from django.db import connections

    if connections["default"].vendor == "postgresql":
        with django_db_blocker.unblock(), connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture
def workspace(transactional_db: None) -> str:
    """The workspace ``acme``."""
    get_or_create_workspace("acme")
    return "acme"


@pytest.fixture
def make_key(transactional_db: None):
    """Create an API key: ``make_key("acme", "emit,consume")`` returns the secret."""

    def make(workspace_id: str = "acme", scopes: str = "emit,consume,search") -> str:
        return create_api_key(workspace_id, scopes.split(","))[1]

    return make


@pytest.fixture
def key(make_key) -> str:
    """A key of ``acme`` with every scope."""
    return make_key()


# --- The history (history/): SQLite, and Elasticsearch through noida-db ---------------


@pytest.fixture(scope="session")
def noida():
    """An Elasticsearch API: ELASTICSEARCH_TEST_URL, or a noida-db this session starts."""
    from tests.noida import Noida, start_noida

    url = os.environ.get("ELASTICSEARCH_TEST_URL")
    if url:
        yield Noida(url)
        return
    server = start_noida()
    yield server
    server.down()


@pytest.fixture(params=["sqlite", "elasticsearch"])
def history(request: pytest.FixtureRequest, transactional_db: None):
    """Run the test on each history; yields its name. Elasticsearch indices are per test."""
    import uuid

    from history import reset_history

    url = request.getfixturevalue("noida").url if request.param == "elasticsearch" else ""
    prefix = f"test{uuid.uuid4().hex[:8]}"
    with override_settings(ELASTICSEARCH_URL=url, ELASTICSEARCH_INDEX_PREFIX=prefix):
        reset_history()
        yield request.param
        reset_history()
    if url:
        from tests.noida import delete_indices

        delete_indices(url, prefix)


@pytest.fixture(autouse=True)
async def _stop_feeds() -> AsyncIterator[None]:
    """Stop the feeds and the audit writer a test started, before its event loop closes.

    Like a stop of the service: the queued audit events go out first, so no publish is
    cut off half way when the loop cancels what is left.
    """
    yield
    from events.realtime import outbox
    from events.realtime.hub import get_hub

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await outbox.flush()
    await outbox.close()
    await get_hub().close()


@pytest.fixture(autouse=True)
def _no_kept_credentials() -> None:
    """Each test starts with nothing kept by authentication (the database was emptied)."""
    from workspaces.authcache import forget_all

    forget_all()


@pytest.fixture(autouse=True)
def _no_outage_left() -> Iterator[None]:
    """Each test starts with every dependency answering and no error event kept."""
    from events.realtime import error_events
    from kernel import outages

    outages.forget()
    error_events.forget()
    yield
    outages.forget()
    error_events.forget()


@pytest.fixture(autouse=True)
def _fresh_log_context() -> None:
    """Each test starts outside any request: no correlation, user or workspace id."""
    from kernel.context import correlation_id_var, user_id_var, workspace_id_var

    for var in (correlation_id_var, user_id_var, workspace_id_var):
        var.set(None)


# --- Operations (sysadmin) ---------------------------------------------------


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]):
    """Read the JSON log lines written to stdout so far: ``log_lines()`` returns dicts."""
    import json

    def read() -> list[dict]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    return read


@pytest.fixture
def admin_token() -> Iterator[str]:
    """Configure an operator token; yields it."""
    token = "test-admin-token-0123456789abcdef"
    with override_settings(EVENTS_ADMIN_TOKEN=token):
        yield token


@pytest.fixture
def make_token():
    """Mint a JWT: ``make_token("u-1", "editor")`` grants editor in ``acme`` (no database)."""
    from workspaces.tokens import mint_token

    def make(
        user: str = "u-1",
        role: str | None = "viewer",
        workspace_id: str = "acme",
        *,
        session: str | None = None,
    ) -> str:
        roles = {workspace_id: role} if role else {}
        return mint_token(user, roles=roles, session_id=session)

    return make


@pytest.fixture
def make_member(transactional_db: None):
    """Give a user a role: ``make_member("u-1", "owner", "acme")``."""
    from workspaces.models import Membership

    def make(user: str, role: str, workspace_id: str = "acme") -> None:
        workspace = get_or_create_workspace(workspace_id)
        Membership.objects.update_or_create(
            workspace=workspace, user_id=user, defaults={"role": role}
        )

    return make


# --- A real server in production mode (tests/production.py) ---------------------------


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory):
    """The static files, collected once per session as an image build does."""
    from tests.production import collect_static

    return collect_static(tmp_path_factory.mktemp("static"), tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="session")
def production(static_root):
    """One uvicorn process with DJANGO_DEBUG=false, shared by the tests of a session."""
    from tests.production import production_server

    with production_server(static_root) as running:
        yield running


# --- A real browser on that server (tests/browser.py) ---------------------------------


@pytest.fixture
async def browser():
    """Headless Debian chromium for one test: skipped without it, except in CI."""
    from tests.browser import launched, require_browser

    require_browser()
    async with launched() as running:
        yield running


@pytest.fixture
async def visitor(browser, production):
    """A fresh browser tab on the production-mode server; each page visited is screenshotted."""
    from tests.browser import visitor as open_visitor

    async with open_visitor(browser, production.http(0)) as tab:
        yield tab
