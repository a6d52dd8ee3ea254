"""Authentication: turn the credentials of a request into a Caller.

Three steps, in an order that tells an anonymous client nothing about which
workspaces exist:

1. **who** (401): the first credential present, in this order, is the one
   checked, and a bad one is refused rather than skipped: ``Authorization:
   Bearer <JWT>``, ``X-Api-Key``, then on WebSocket and the event stream (SSE)
   only ``?token=`` and ``?apiKey=``, then the Django session (the admin and the browsable docs);
2. **where** (404): the workspace must exist;
3. **what** (403): the caller's role or scopes in that workspace.

Roles: a JWT user's role is their ``Membership`` in the workspace if there is
one (the operator's word wins), else the one the token grants in its
``workspaces`` claim. A session user is the Django user of that username:
superusers are owners of every workspace, anyone else needs a ``Membership``
for their username.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from kernel.caller import OWNER, Caller
from kernel.database import database_sync_to_async
from kernel.errors import NotAuthenticated, PermissionDenied, WorkspaceNotFound
from workspaces import authcache
from workspaces.models import (
    NUL,
    ApiKey,
    Membership,
    Workspace,
    hash_key,
    is_workspace_id,
    split_key,
)
from workspaces.tokens import TokenClaims, verify_token

BEARER = "bearer"
LAST_USED_PRECISION = timedelta(minutes=1)
NO_CREDENTIALS = (
    "send Authorization: Bearer <JWT>, X-Api-Key or a session cookie "
    "(?token= and ?apiKey= are accepted on WebSocket and the event stream only)"
)
# Compared against when no key has the presented prefix, so both paths hash and compare.
_NO_SUCH_KEY_HASH = hash_key("no such key")


class Identity(Protocol):
    """A verified credential, not yet tied to a workspace."""

    def caller_in(self, workspace: Workspace) -> Caller:
        """The caller in a workspace; raise PermissionDenied if it has no rights there."""
        ...


@dataclass(frozen=True)
class TokenIdentity:
    """A user of the identity provider, from a verified JWT."""

    claims: TokenClaims

    def caller_in(self, workspace: Workspace) -> Caller:
        """The user's role: their membership, else what the token grants."""
        user_id = self.claims.user_id
        role = _member_role(workspace, user_id) or self.claims.role_in(workspace.slug)
        if role is None:
            raise PermissionDenied(f"{user_id!r} is not a member of this workspace")
        return Caller.for_user(workspace.slug, user_id, role, self.claims.session_id)


@dataclass(frozen=True)
class KeyIdentity:
    """A trusted service holding an API key."""

    key: ApiKey

    def caller_in(self, workspace: Workspace) -> Caller:
        """The key's scopes, in its own workspace only."""
        if self.key.workspace_id != workspace.pk:
            raise PermissionDenied("this API key belongs to another workspace")
        return Caller.for_api_key(
            workspace.slug, self.key.name, self.key.scope_set, key_id=self.key.prefix
        )


@dataclass(frozen=True)
class SessionIdentity:
    """A Django user logged in to the admin (or the docs) in this browser."""

    user: Any

    def caller_in(self, workspace: Workspace) -> Caller:
        """Superusers own every workspace; others need a membership for their username."""
        username = self.user.get_username()
        role = OWNER if self.user.is_superuser else _member_role(workspace, username)
        if role is None:
            raise PermissionDenied(f"{username!r} is not a member of this workspace")
        return Caller.for_user(workspace.slug, username, role)


def identify(headers: Mapping[str, str], query: Mapping[str, str], user: Any = None) -> Identity:
    """Check the first credential present (headers, then query, then session); 401 if none."""
    authorization = headers.get("authorization")
    if authorization:
        return TokenIdentity(verify_token(_bearer(authorization)))
    if headers.get("x-api-key"):
        return KeyIdentity(find_api_key(headers["x-api-key"]))
    if query.get("token"):
        return TokenIdentity(verify_token(query["token"]))
    if query.get("apiKey"):
        return KeyIdentity(find_api_key(query["apiKey"]))
    if user is not None and user.is_authenticated:
        return SessionIdentity(user)
    raise NotAuthenticated(NO_CREDENTIALS)


def _bearer(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != BEARER or not token.strip():
        raise NotAuthenticated("the Authorization header must be 'Bearer <JWT>'")
    return token.strip()


def find_api_key(plain: str) -> ApiKey:
    """The active key matching a presented secret (constant-time check); 401 otherwise."""
    digest = hash_key(plain)
    cached = authcache.KEYS.get(digest)
    if cached is not None:
        return cached
    generation = authcache.KEYS.generation
    key = _lookup_api_key(plain)
    authcache.KEYS.put(digest, key, looked_up_in=generation)
    return key


def _lookup_api_key(plain: str) -> ApiKey:
    prefix = split_key(plain)
    keys = ApiKey.objects.select_related("workspace")
    key = keys.filter(prefix=prefix).first() if prefix else None
    candidate = key or ApiKey(hashed_key=_NO_SUCH_KEY_HASH)
    if not candidate.matches(plain) or key is None:
        raise NotAuthenticated("invalid API key")
    if not key.is_active:
        raise NotAuthenticated("this API key has been revoked")
    _touch(key)
    return key


def _touch(key: ApiKey) -> None:
    # At most one write a minute per key: SQLite serializes writers.
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)


def find_workspace(workspace_id: str) -> Workspace:
    """The workspace; WorkspaceNotFound (404) if it does not exist."""
    workspace = authcache.WORKSPACES.get(workspace_id)
    generation = authcache.WORKSPACES.generation
    if workspace is None:
        # An id no workspace can have finds none (PostgreSQL refuses a NUL even in a lookup).
        ok = is_workspace_id(workspace_id)
        workspace = Workspace.objects.filter(slug=workspace_id).first() if ok else None
        if workspace is None:
            raise WorkspaceNotFound(f"unknown workspace {workspace_id!r}")
        authcache.WORKSPACES.put(workspace_id, workspace, looked_up_in=generation)
    return workspace


def _member_role(workspace: Workspace, user_id: str) -> str | None:
    if NUL in user_id:  # no member has one; PostgreSQL refuses even to compare it
        return None
    memberships = Membership.objects.filter(workspace=workspace, user_id=user_id)
    return memberships.values_list("role", flat=True).first()


def authenticate_request(request: HttpRequest, workspace_id: str) -> Caller:
    """Authenticate a Django HTTP request (no credentials in URLs; CSRF for sessions)."""
    headers = {key.lower(): value for key, value in request.headers.items()}
    identity = identify(headers, {}, SimpleLazyObject(lambda: session_user(request)))
    if isinstance(identity, SessionIdentity):
        check_csrf(request)
    return identity.caller_in(find_workspace(workspace_id))


def session_user(request: HttpRequest) -> Any:
    """The user of the request's Django session (DRF replaces ``request.user``, so ask again)."""
    if not hasattr(request, "session"):
        return AnonymousUser()
    return get_user(request)


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def _no_response(request: HttpRequest) -> Any:
    return None


def check_csrf(request: HttpRequest) -> None:
    """A write authenticated by a session cookie must prove it came from our pages (403)."""
    # DRF views are CSRF-exempt, so the check is made here.
    check = _CsrfCheck(_no_response)
    check.process_request(request)
    reason = check.process_view(request, _no_response, (), {})
    if reason:
        raise PermissionDenied(
            f"CSRF check failed: {reason} (send the csrftoken cookie's value in X-CSRFToken)"
        )


def authenticate_scope(
    scope: Mapping[str, Any],
    workspace_id: str,
    headers: Mapping[str, str],
    query: Mapping[str, list[str]],
) -> Caller:
    """Authenticate a WebSocket handshake (headers, ``?token=``, ``?apiKey=``, session)."""
    flat = {key: values[-1] for key, values in query.items() if values}
    identity = identify(headers, flat, scope.get("user"))
    if isinstance(identity, SessionIdentity) and not same_origin(headers):
        raise PermissionDenied("a session cookie is accepted only from this site's own pages")
    return identity.caller_in(find_workspace(workspace_id))


async def aauthenticate_scope(
    scope: Mapping[str, Any],
    workspace_id: str,
    headers: Mapping[str, str],
    query: Mapping[str, list[str]],
) -> Caller:
    """Authenticate a WebSocket handshake, off the event loop."""
    return await database_sync_to_async(authenticate_scope)(scope, workspace_id, headers, query)


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a browser's ``Origin`` is this host or a trusted origin (none: not a browser)."""
    origin = headers.get("origin")
    if not origin:
        return True
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
