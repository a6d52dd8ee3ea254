"""Creating and revoking API keys (used by the command, the admin and tests)."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone

from workspaces.models import ApiKey, Workspace


def get_or_create_workspace(slug: str) -> Workspace:
    """Return the workspace, creating it (validated) if needed."""
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


def create_api_key(workspace_slug: str, scopes: list[str], *, name: str = "") -> tuple[ApiKey, str]:
    """Create a key in a workspace (created if needed); return it and its secret."""
    workspace = get_or_create_workspace(workspace_slug)
    return ApiKey.issue(workspace, name or f"key-{secrets.token_hex(3)}", scopes)


def revoke_api_key(key: ApiKey) -> None:
    """Revoke a key: it authenticates nobody from now on."""
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
