"""``python manage.py minttoken USER [--workspace W --role R] [--session S] [--expires-in N]``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kernel.caller import ROLES, VIEWER
from workspaces.keys import get_or_create_workspace
from workspaces.tokens import DEFAULT_TOKEN_TTL_SECS, RESERVED_USER_PREFIX, mint_token


class Command(BaseCommand):
    help = (
        "Print a JWT (HS256, signed with JWT_SECRET) for USER, granting a role in a "
        "workspace (created if needed) through the token's 'workspaces' claim."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="the token's sub")
        parser.add_argument("--workspace", help="the workspace the role is granted in")
        parser.add_argument("--role", choices=ROLES, help=f"default {VIEWER}")
        parser.add_argument("--session", default=None, help="the token's sid")
        parser.add_argument(
            "--expires-in", type=int, default=DEFAULT_TOKEN_TTL_SECS, help="seconds (default 3600)"
        )

    def handle(self, *args: object, **options: Any) -> None:
        self._check(options)
        roles = self._roles(options)
        try:
            token = mint_token(
                options["user"],
                roles=roles,
                session_id=options["session"],
                expires_in_secs=options["expires_in"],
            )
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(self._describe(options, roles))
        self.stdout.write(token)

    def _roles(self, options: dict[str, Any]) -> dict[str, str]:
        workspace, role = options["workspace"], options["role"]
        if role and not workspace:
            raise CommandError("--role needs --workspace")
        if not workspace:
            return {}
        try:
            get_or_create_workspace(workspace)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        return {workspace: role or VIEWER}

    def _check(self, options: dict[str, Any]) -> None:
        if not options["user"] or options["user"].startswith(RESERVED_USER_PREFIX):
            raise CommandError(
                f"USER must be non-empty and not start with {RESERVED_USER_PREFIX!r}"
            )
        if options["expires_in"] < 1:
            raise CommandError("--expires-in must be at least 1 second")

    def _describe(self, options: dict[str, Any], roles: dict[str, str]) -> str:
        grants = ", ".join(f"{role} in {ws!r}" for ws, role in roles.items()) or "no role"
        return f"JWT for {options['user']!r} ({grants}), valid {options['expires_in']} s:"
