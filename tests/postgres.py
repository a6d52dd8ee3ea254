"""Databases of this test run on the real PostgreSQL server, dropped at the end.

``POSTGRES_TEST_URL`` (default ``postgres://postgres@127.0.0.1:5432``: the development
and CI machines' server, trust authentication) names the server; each database is
called ``events_<label>_<pid>_<random>``, so that runs at once never meet.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

POSTGRES_TEST_URL = os.environ.get("POSTGRES_TEST_URL", "postgres://postgres@127.0.0.1:5432")


def _admin() -> psycopg.Connection:
    return psycopg.connect(f"{POSTGRES_TEST_URL}/postgres", autocommit=True, connect_timeout=10)


@contextmanager
def postgres_database(label: str) -> Iterator[str]:
    """A new, empty database; yields its ``DATABASE_URL``; dropped (connections and all) after."""
    name = f"events_{label}_{os.getpid()}_{secrets.token_hex(3)}"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{POSTGRES_TEST_URL}/{name}"
    finally:
        with _admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def query(url: str, statement: str) -> list[tuple]:
    """The rows of one fixed statement run in the database of ``url``."""
    with psycopg.connect(url, connect_timeout=10) as connection:
        return connection.execute(statement.encode()).fetchall()
