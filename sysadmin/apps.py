"""The operations app: JSON logs, metrics, healthcheck, log levels, heap dumps."""

from __future__ import annotations

from django.apps import AppConfig


class SysadminConfig(AppConfig):
    name = "sysadmin"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Route structlog through logging; listen for log level changes in the background."""
        from kernel.tasks import register
        from sysadmin.loglevels import start_listener
        from sysadmin.logs import configure_structlog

        configure_structlog()
        register(start_listener)
