"""The workspaces app: tenants, members, API keys and who may do what."""

from __future__ import annotations

from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "workspaces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Load the configured JWT public keys (a bad file stops the start-up); wire the cache."""
        from workspaces import changes
        from workspaces.tokens import check_configuration

        check_configuration()
        changes.connect()
