"""The project as an app: its own pages' templates and static files, its start-up checks,
and the wiring done once at start-up."""

from __future__ import annotations

from django.apps import AppConfig


class EventsProjectConfig(AppConfig):
    """``eventsproject`` in INSTALLED_APPS: the landing page, the static-files check, the
    control plane's bus."""

    name = "eventsproject"
    verbose_name = "Events service"

    def ready(self) -> None:
        """Register the system checks (``eventsproject.startup``); the control plane travels
        over the channel layer (``adapters/control_bus.py``); a new database connection ends
        a database outage (``kernel.outages``)."""
        from django.db.backends.signals import connection_created

        from adapters import control_bus
        from eventsproject import startup  # noqa: F401 - registers its checks
        from eventsproject.databases import database_answered

        control_bus.install()
        # With no persistent connections every request opens one: each says the database answers.
        connection_created.connect(database_answered, dispatch_uid="eventsproject.databases")
