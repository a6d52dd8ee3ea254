"""The events app: the event and its realtime engine."""

from __future__ import annotations

from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Open connections are checked again at once when their workspace's credentials change."""
        from events.realtime import control, recheck

        control.on(control.CREDENTIALS_CHANGED, recheck.check_workspace_now)
