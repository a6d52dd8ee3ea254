"""``manage.py archive``: run the archiver as its own process (the scaled deployment).

Several may run at once: the broker's consumer group shares the events among
them, and a dead one's unacknowledged batch is claimed again by the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from django.core.management.base import BaseCommand

from events.broker import get_archive_queue
from history import get_history
from history.archiver import archiver_from_settings


class Command(BaseCommand):
    help = "Move every event from the broker to the history, until stopped."

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self.run())

    async def run(self) -> None:
        """Set up the history, then archive until SIGTERM or SIGINT."""
        history = get_history()
        await history.setup()
        archiver = archiver_from_settings(get_archive_queue(), history)
        task = asyncio.get_running_loop().create_task(archiver.run())
        self.stop_on_signals(task)
        self.stdout.write(f"archiver {archiver.consumer} running")
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await history.close()

    @staticmethod
    def stop_on_signals(task: asyncio.Task) -> None:
        """Cancel the archiver on SIGTERM/SIGINT (an unacknowledged batch is read again)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
