"""Where the shared state lives: SQLite by default, PostgreSQL (or SQLite) by ``DATABASE_URL``.

Each test runs ``manage.py`` as an operator would, in a process of its own, against
a real PostgreSQL database of this run (tests/postgres.py) or a SQLite file.
"""

from __future__ import annotations

import os
import sqlite3

import httpx
import pytest

from tests.postgres import postgres_database, query
from tests.servers import free_port, one_server
from tests.test_safe_defaults import manage

SECRET = "s3cr3t-in-the-url"


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://events:{SECRET}@db.example/events",
        f"redis://:{SECRET}@127.0.0.1:6379/0",
        f"events:{SECRET}@db.example/events",
        f"ftp‽://events:{SECRET}@db.example/events",
    ],
)
def test_it_refuses_to_start_with_an_unsupported_database_scheme(tmp_path, url):
    checked = manage(tmp_path, {"DJANGO_DEBUG": "true", "DATABASE_URL": url}, "check")
    assert checked.returncode != 0
    assert "DATABASE_URL must start with postgres://, postgresql:// or sqlite:///" in checked.stderr
    assert SECRET not in checked.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"postgres://events:{SECRET}@db.example:port/events", "DATABASE_URL is not a valid URL"),
        (f"postgres://events:{SECRET}@db.example:5432", "DATABASE_URL names no database"),
        ("postgresql://", "DATABASE_URL names no database"),
        ("sqlite://", "DATABASE_URL names no database"),
    ],
)
def test_it_refuses_to_start_with_a_malformed_database_url(tmp_path, url, says):
    checked = manage(tmp_path, {"DJANGO_DEBUG": "true", "DATABASE_URL": url}, "check")
    assert checked.returncode != 0
    assert says in checked.stderr
    assert SECRET not in checked.stderr


def tables(path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def test_migrate_builds_a_fresh_postgresql_database_and_the_history_s_own_file(tmp_path):
    with postgres_database("migrate") as url:
        env = {"DJANGO_DEBUG": "true", "DATABASE_URL": url}
        for _ in range(2):  # a second migrate finds nothing to do
            migrated = manage(tmp_path, env, "migrate", "--noinput")
            assert migrated.returncode == 0, migrated.stderr
        created = manage(tmp_path, env, "createapikey", "acme", "--name", "first")
        assert created.returncode == 0, created.stderr
        assert query(url, "SELECT slug FROM workspaces_workspace") == [("acme",)]
        assert query(url, "SELECT name FROM workspaces_apikey") == [("first",)]
        stored = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert "history_storedevent" not in {name for (name,) in stored}
    # The SQLite history filters with functions only SQLite has: its table is in a file.
    assert "history_storedevent" in tables(tmp_path / "history.sqlite3")
    assert not (tmp_path / "events.sqlite3").exists()


def test_a_sqlite_database_url_holds_the_shared_state_and_the_history(tmp_path):
    path = tmp_path / "elsewhere.sqlite3"
    env = {"DJANGO_DEBUG": "true", "DATABASE_URL": f"sqlite:///{path}"}
    assert manage(tmp_path, env, "migrate", "--noinput").returncode == 0
    created = manage(tmp_path, env, "createapikey", "acme")
    assert created.returncode == 0, created.stderr
    assert {"workspaces_apikey", "history_storedevent"} <= tables(path)
    assert not (tmp_path / "events.sqlite3").exists()
    assert not (tmp_path / "history.sqlite3").exists()


def test_a_database_that_does_not_answer_is_503_service_unavailable_not_500(tmp_path):
    # Nothing listens where DATABASE_URL points: the PostgreSQL server is down.
    nowhere = f"postgres://postgres@127.0.0.1:{free_port()}/events"
    env = {**os.environ, "DJANGO_DEBUG": "true", "EVENTS_VAR_DIR": str(tmp_path)}
    with one_server({**env, "DATABASE_URL": nowhere}) as port:
        response = httpx.get(
            f"http://127.0.0.1:{port}/v2/workspaces/acme/events/poll",
            params={"timeout": "0"},
            headers={"X-Api-Key": "evk_0123456789ab_" + "x" * 43},
        )
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "ServiceUnavailable"
        assert int(response.headers["Retry-After"]) > 0


def test_a_new_connection_to_the_database_ends_its_outage(transactional_db):
    from django.db import connections

    from kernel import outages

    outages.failed(outages.DATABASE, OSError("connection refused"), "a test")
    assert outages.is_down(outages.DATABASE)
    fresh = connections.create_connection("default")  # what the next request opens
    try:
        fresh.ensure_connection()
    finally:
        fresh.close()
    assert not outages.is_down(outages.DATABASE)
