"""Where the shared state lives: SQLite (embedded default) or the database of ``DATABASE_URL``.

Workspaces, members, API keys, Django's users and sessions live in the ``default``
database: ``EVENTS_DB_PATH`` (SQLite) unless ``DATABASE_URL`` names another one,
``postgres://`` / ``postgresql://`` (PostgreSQL, through psycopg 3) or ``sqlite:///path``.

The SQLite history (``history/sqlite.py``) filters with SQL functions of its own
that only SQLite has, so on PostgreSQL its table is in a SQLite file of its own,
the ``history`` database (``EVENTS_HISTORY_DB_PATH``), and
:class:`history.routers.HistoryRouter` sends the history's model there. With
``ELASTICSEARCH_URL`` that file stays empty.
"""

from __future__ import annotations

from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from history.routers import HISTORY_DB
from kernel import outages

SCHEMES = ("postgres", "postgresql", "sqlite")
POSTGRESQL = "django.db.backends.postgresql"
# A PostgreSQL server that does not answer fails a request (503) within this time, not a
# TCP time-out later; the health check's own bound is HEALTHCHECK_TIMEOUT_MSECS.
CONNECT_TIMEOUT_SECS = 5


def sqlite_database(path: str) -> dict[str, Any]:
    """A SQLite database: WAL, so that readers never wait for the writer; writers wait 20 s."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
    }


def _scheme(url: str) -> str:
    scheme, separator, _ = url.partition("://")
    if not separator or scheme.lower() not in SCHEMES:
        shown = scheme.lower() if separator and scheme.isascii() and len(scheme) <= 20 else ""
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with postgres://, postgresql:// or sqlite:///; "
            f"{f'the scheme {shown!r} is' if shown else 'this value is'} not supported"
        )
    return scheme.lower()


def url_database(url: str) -> dict[str, Any]:
    """The database of a ``DATABASE_URL``; ImproperlyConfigured (never echoing it) if bad."""
    scheme = _scheme(url.strip())
    try:
        # No persistent connections: under ASGI, Django's ORM runs in a thread per request
        # (sync_to_async), so a connection kept by a thread is never used again; it would
        # only hold a server slot. Every request opens and closes its own (docs/OPERATIONS.md).
        config: dict[str, Any] = dict(
            dj_database_url.parse(url.strip(), conn_max_age=0, conn_health_checks=True)
        )
    except (ValueError, dj_database_url.ParseError):
        raise ImproperlyConfigured(
            "DATABASE_URL is not a valid URL: postgres://USER:PASSWORD@HOST:PORT/NAME "
            "(characters such as @ / : in the password percent-encoded)"
        ) from None
    if not config.get("NAME") or config["NAME"] == ":memory:":
        raise ImproperlyConfigured(
            f"DATABASE_URL names no database: {scheme}:// needs "
            + ("a file, sqlite:////absolute/path" if scheme == "sqlite" else "/NAME at its end")
        )
    if config["ENGINE"] == POSTGRESQL:
        config.setdefault("OPTIONS", {}).setdefault("connect_timeout", CONNECT_TIMEOUT_SECS)
    return config


def databases(url: str, *, sqlite_path: str, history_path: str) -> dict[str, dict[str, Any]]:
    """``DATABASES``: the shared state, and the SQLite history's own file when it is not SQLite."""
    if not url.strip():
        return {"default": sqlite_database(sqlite_path)}
    default = url_database(url)
    if default["ENGINE"] != POSTGRESQL:
        return {"default": {**sqlite_database(default["NAME"]), **default}}
    return {"default": default, HISTORY_DB: sqlite_database(history_path)}


def database_answered(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created``: the shared state's database answered, which ends its outage."""
    if connection.alias == "default":
        outages.answered(outages.DATABASE)
