"""Authentication: turn the credentials of a request into a Caller.

One function serves HTTP and WebSocket: :func:`authenticate` takes the
headers (and, for browsers on WebSocket, the query string) and the workspace
asked for, and returns a :class:`~workspaces.caller.Caller` or raises the
contract's 401, 403 or 404.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.utils import timezone

from events.errors import NotAuthenticated, WorkspaceNotFound
from workspaces.caller import Caller
from workspaces.models import ApiKey, Workspace, split_key


def authenticate(
    workspace_id: str, *, headers: Mapping[str, str], query: Mapping[str, str] | None = None
) -> Caller:
    """Return the caller acting in ``workspace_id``; raise 401, 403 or 404."""
    query = query or {}
    api_key = headers.get("x-api-key") or query.get("apiKey")
    if api_key:
        return _caller_for_key(workspace_id, api_key)
    raise NotAuthenticated("send Authorization: Bearer <JWT> or X-Api-Key")


def _caller_for_key(workspace_id: str, plain: str) -> Caller:
    prefix = split_key(plain)
    key = (
        ApiKey.objects.select_related("workspace").filter(prefix=prefix).first()
        if prefix
        else None
    )
    if key is None or not key.matches(plain) or key.revoked_at is not None:
        raise NotAuthenticated("invalid API key")
    if key.workspace.slug != workspace_id:
        if not Workspace.objects.filter(slug=workspace_id).exists():
            raise WorkspaceNotFound(f"unknown workspace {workspace_id!r}")
        from events.errors import PermissionDenied

        raise PermissionDenied("this API key belongs to another workspace")
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return Caller.for_api_key(workspace_id, key.name, key.scope_set)


def _caller_for_scope(
    scope: dict, workspace_id: str, headers: Mapping[str, str], query: Mapping[str, list[str]]
) -> Caller:
    flat = {key: values[-1] for key, values in query.items() if values}
    return authenticate(workspace_id, headers=headers, query=flat)


async def aauthenticate_scope(
    scope: dict, workspace_id: str, headers: Mapping[str, str], query: Mapping[str, list[str]]
) -> Caller:
    """Authenticate a WebSocket handshake (headers, ``?token=``, ``?apiKey=``)."""
    from channels.db import database_sync_to_async

    return await database_sync_to_async(_caller_for_scope)(scope, workspace_id, headers, query)


def authenticate_request(request: object, workspace_id: str) -> Caller:
    """Authenticate a Django HTTP request (headers only: no credentials in URLs)."""
    headers = {key.lower(): value for key, value in request.headers.items()}  # type: ignore[attr-defined]
    return authenticate(workspace_id, headers=headers)
