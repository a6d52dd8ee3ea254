"""``python manage.py revokeapikey PREFIX``: revoke an API key, on every process at once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workspaces.audit import Actor
from workspaces.keys import revoke_api_key
from workspaces.models import ApiKey

PREFIX_CHARS = 16


class Command(BaseCommand):
    help = (
        "Revoke the API key with this prefix (the part after 'evk_', as listapikeys shows it). "
        "Its open connections close on every process of the service."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: object, **options: str) -> None:
        prefix = options["prefix"]
        if not prefix or len(prefix) > PREFIX_CHARS or not prefix.isalnum():
            raise CommandError("a key prefix is 1 to 16 letters and digits")
        key = ApiKey.objects.select_related("workspace").filter(prefix=prefix).first()
        if key is None:
            raise CommandError(f"no API key has the prefix {prefix!r}")
        if not revoke_api_key(key, actor=Actor.from_command()):
            self.stderr.write(f"{key} was already revoked")
            return
        self.stderr.write(f"revoked {key}")
