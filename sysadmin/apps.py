"""The operations app: JSON logs, metrics, healthcheck, log levels, heap dumps."""

from __future__ import annotations

from django.apps import AppConfig


class SysadminConfig(AppConfig):
    name = "sysadmin"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Route structlog through logging; apply log level changes from every process."""
        from events.realtime import control
        from kernel.tasks import register
        from sysadmin import loglevels
        from sysadmin.logs import configure_structlog

        configure_structlog()
        control.on(control.LOG_LEVEL_CHANGED, loglevels.apply_change)
        register(loglevels.start)
