"""The project as an app: its own pages' templates and static files, its start-up checks."""

from __future__ import annotations

from django.apps import AppConfig


class EventsProjectConfig(AppConfig):
    """``eventsproject`` in INSTALLED_APPS: the landing page and the static-files check."""

    name = "eventsproject"
    verbose_name = "Events service"

    def ready(self) -> None:
        """Register the system checks (``eventsproject.startup``)."""
        from eventsproject import startup  # noqa: F401 - registers its checks
