"""``manage.py purge_history``: remove events older than the retention period."""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from history import get_history
from history.archiver import apply_retention


class Command(BaseCommand):
    help = "Remove events older than --days (default EVENTS_RETENTION_DAYS) from the history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=settings.EVENTS_RETENTION_DAYS)

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days <= 0:
            raise CommandError("give --days or set EVENTS_RETENTION_DAYS (0 keeps everything)")
        deleted = asyncio.run(self.purge(days))
        self.stdout.write(f"removed {deleted} events older than {days} days")

    @staticmethod
    async def purge(days: int) -> int:
        """Apply the retention and close the history's client."""
        history = get_history()
        deleted = await apply_retention(history, days)
        await history.close()
        return deleted
