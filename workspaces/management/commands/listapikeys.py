"""``python manage.py listapikeys [WORKSPACE]``: the API keys, without their secrets."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from workspaces.models import ApiKey

MAX_ROWS = 10_000


class Command(BaseCommand):
    help = "List API keys (prefix, workspace, name, scopes, state); secrets are never shown."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace", nargs="?")

    def handle(self, *args: object, **options: str | None) -> None:
        keys = ApiKey.objects.select_related("workspace").order_by("workspace__slug", "created_at")
        if options["workspace"]:
            keys = keys.filter(workspace__slug=options["workspace"])
        for key in keys[:MAX_ROWS]:
            state = f"revoked {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if key.revoked_at else "active"
            row = (key.prefix, key.workspace.slug, key.name or "-", key.scopes, state)
            self.stdout.write("\t".join(row))
