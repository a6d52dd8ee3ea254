"""Who may use ``/sys/logging`` and ``/sys/heapdump``: an operator.

An operator is a staff user with a Django session, or a caller sending
``X-Admin-Token`` equal to ``settings.EVENTS_ADMIN_TOKEN`` (compared in
constant time; with no token configured, only staff sessions).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest

from kernel.caller import PLATFORM_WORKSPACE, Caller
from kernel.context import user_id_var
from kernel.errors import NotAuthenticated, PermissionDenied
from workspaces.auth import check_csrf, session_user

ADMIN_TOKEN_HEADER = "X-Admin-Token"  # noqa: S105 - a header name
TOKEN_USER_ID = "admin-token"  # noqa: S105 - the audit user id


@dataclass(frozen=True)
class Operator:
    """An authenticated operator, as written into audit events and logs."""

    user_id: str
    session_id: str | None = None

    def as_caller(self) -> Caller:
        """The operator as the caller of an audit event in the platform workspace."""
        return Caller(PLATFORM_WORKSPACE, self.user_id, self.session_id)


def token_matches(sent: str) -> bool:
    """Whether ``sent`` is the configured admin token (constant time)."""
    expected = settings.EVENTS_ADMIN_TOKEN
    if not expected or not sent:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


def _session_operator(request: HttpRequest) -> Operator | None:
    user = session_user(request)
    if not user.is_authenticated:
        return None
    if not (user.is_active and user.is_staff):
        raise PermissionDenied("only staff users may do this")
    check_csrf(request)
    return Operator(user_id=f"user:{user.get_username()}", session_id=request.session.session_key)


def authenticate_operator(request: HttpRequest) -> Operator:
    """Return the operator behind the request; raise 401 or 403."""
    sent = request.headers.get(ADMIN_TOKEN_HEADER)
    if sent is not None:
        if not token_matches(sent):
            raise NotAuthenticated("the admin token is not valid")
        return Operator(user_id=TOKEN_USER_ID)
    operator = _session_operator(request)
    if operator is None:
        raise NotAuthenticated(f"send {ADMIN_TOKEN_HEADER} or sign in as a staff user")
    return operator


async def require_operator(request: HttpRequest) -> Operator:
    """Authenticate an operator (the session is read off the event loop)."""
    operator = await sync_to_async(authenticate_operator)(request)
    user_id_var.set(operator.user_id)
    return operator
