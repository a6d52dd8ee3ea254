"""Creating and revoking API keys (used by the command, the admin and tests).

Given an :class:`~workspaces.audit.Actor`, each change is also written to the
workspace's audit trail (``apikeys.created``, ``apikeys.revoked``).
"""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from kernel.caller import is_reserved_workspace
from workspaces import changes
from workspaces.audit import KEY_CREATED, KEY_REVOKED, Actor, record_key_action
from workspaces.models import ApiKey, Workspace, parse_scopes


def get_or_create_workspace(slug: str) -> Workspace:
    """Return the workspace, creating it (validated) if needed; never a reserved one."""
    if is_reserved_workspace(slug):
        raise ValueError(f"the workspace id {slug!r} is reserved for the service's own use")
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace:
        return workspace
    workspace = Workspace(slug=slug, name=slug)
    try:
        workspace.full_clean()
    except DjangoValidationError as exc:
        raise ValueError(f"invalid workspace id {slug!r}: {exc.messages}") from None
    workspace.save()
    return workspace


def create_api_key(
    workspace_slug: str, scopes: list[str], *, name: str = "", actor: Actor | None = None
) -> tuple[ApiKey, str]:
    """Create a key in a workspace (created if needed); return it and its secret."""
    with transaction.atomic():
        workspace = get_or_create_workspace(workspace_slug)
        key = ApiKey(workspace=workspace, name=name or f"key-{secrets.token_hex(3)}")
        key.scopes = ",".join(parse_scopes(scopes))
        try:  # the columns' bounds: SQLite would not hold them, PostgreSQL refuse with a 500
            key.clean_fields(exclude={"prefix", "hashed_key"})
        except DjangoValidationError as exc:
            raise ValueError(f"invalid API key: {' '.join(exc.messages)}") from None
        plain = save_new_key(key, actor=actor)
    return key, plain


def save_new_key(key: ApiKey, *, actor: Actor | None = None) -> str:
    """Give a new key its secret, store it hashed, audit it; return the plain secret."""
    plain = key.set_new_secret()
    key.save()
    if actor is not None:
        record_key_action(KEY_CREATED, key, actor)
    return plain


def revoke_api_key(key: ApiKey, *, actor: Actor | None = None) -> bool:
    """Revoke a key: it authenticates nobody from now on; False if it already was."""
    updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    key.refresh_from_db(fields=["revoked_at"])
    changes.credentials_changed(key.workspace.slug)
    if updated and actor is not None:
        record_key_action(KEY_REVOKED, key, actor)
    return bool(updated)
