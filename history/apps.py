from __future__ import annotations

from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "history"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Run the archiver inside the service process when configured to; SQL functions."""
        from django.db.backends.signals import connection_created

        from history.archiver import start_in_process
        from history.sqlite_functions import register_functions
        from kernel.tasks import register

        register(start_in_process)
        connection_created.connect(register_functions, dispatch_uid="history.sqlite_functions")
