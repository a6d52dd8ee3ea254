"""``manage.py setup_history``: install the history's index template (idempotent)."""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from history import get_history


class Command(BaseCommand):
    help = "Install the Elasticsearch index template (safe to run again); SQLite: migrate."

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self.setup())
        where = settings.ELASTICSEARCH_URL or "the SQLite database (run migrate)"
        self.stdout.write(f"history ready in {where}")

    @staticmethod
    async def setup() -> None:
        """Set up the history and close its client."""
        history = get_history()
        await history.setup()
        await history.close()
