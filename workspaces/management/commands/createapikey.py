"""``python manage.py createapikey WORKSPACE [--scopes emit,consume,search] [--name N]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kernel.caller import KEY_SCOPES
from workspaces.audit import Actor
from workspaces.keys import create_api_key


class Command(BaseCommand):
    help = "Create the workspace if needed and print a new API key (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace")
        parser.add_argument("--scopes", default=",".join(KEY_SCOPES))
        parser.add_argument("--name", default="")

    def handle(self, *args: object, **options: str) -> None:
        try:
            key, plain = create_api_key(
                options["workspace"],
                options["scopes"].split(","),
                name=options["name"],
                actor=Actor.from_command(),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        workspace = key.workspace.slug
        self.stderr.write(f"API key {key.name!r} for workspace {workspace!r} ({key.scopes}):")
        self.stdout.write(plain)
