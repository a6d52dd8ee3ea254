"""The SQLite history's own database, when the shared state is not SQLite.

With ``DATABASE_URL`` on PostgreSQL (eventsproject/databases.py) the history's table
goes to a SQLite database of its own, ``history``: its SQL functions
(:mod:`history.sqlite_functions`) exist only in SQLite.
"""

from __future__ import annotations

from typing import Any

HISTORY_DB = "history"
HISTORY_APP = "history"


class HistoryRouter:
    """The history's model in the ``history`` database, everything else in ``default``."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        """The history's model is read from its own database."""
        return HISTORY_DB if model._meta.app_label == HISTORY_APP else None  # type: ignore[attr-defined]

    db_for_write = db_for_read

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        """Each app's tables in its own database only."""
        return (app_label == HISTORY_APP) == (db == HISTORY_DB)
