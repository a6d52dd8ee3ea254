from __future__ import annotations

from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "history"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Run the archiver inside the service process when configured to."""
        from events.background import register
        from history.archiver import start_in_process

        register(start_in_process)
