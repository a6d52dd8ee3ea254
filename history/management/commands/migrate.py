"""``manage.py migrate``: Django's, and on PostgreSQL also the SQLite history's own file.

With ``DATABASE_URL`` on PostgreSQL the history's table is in a database of its own
(``history``: history/routers.py); ``manage.py migrate`` from the command line
migrates both, so that every deployment step stays one command. ``--database`` (and
``call_command``, as the test runner uses it) migrates the one database named.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections

from history.routers import HISTORY_DB


class Command(migrate.Command):
    every_database = False

    def run_from_argv(self, argv: list[str]) -> None:
        """From the command line without ``--database``: every database of the settings."""
        self.every_database = not any(arg.startswith("--database") for arg in argv)
        super().run_from_argv(argv)

    def handle(self, *args: Any, **options: Any) -> None:
        """Migrate the database asked for, then the history's own when there is one."""
        super().handle(*args, **options)
        every = self.every_database and options["database"] == DEFAULT_DB_ALIAS
        if every and HISTORY_DB in connections.databases:
            super().handle(*args, **{**options, "database": HISTORY_DB})
