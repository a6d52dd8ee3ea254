"""The audit trail of key management: ``apikeys.created`` and ``apikeys.revoked``.

The admin and the ``createapikey`` command run synchronously; the events go
out through :func:`events.realtime.publishing.record_action_now` once the database
transaction that made the change has committed, so a rolled-back change is
never reported.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.db import transaction
from django.http import HttpRequest

from events.realtime.publishing import record_action_now
from kernel.caller import Caller
from kernel.context import RequestContext, accept_correlation_id, new_correlation_id
from workspaces.models import ApiKey

KEY_CREATED, KEY_REVOKED = "apikeys.created", "apikeys.revoked"


@dataclass(frozen=True)
class Actor:
    """Who manages keys, and the correlation id of the action."""

    user_id: str
    correlation_id: str
    transport: str
    ip: str | None = None

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        """The admin user behind a Django request."""
        correlation_id = getattr(request, "correlation_id", None)
        return cls(
            user_id=request.user.get_username(),
            correlation_id=accept_correlation_id(correlation_id),
            transport="admin",
            ip=request.META.get("REMOTE_ADDR"),
        )

    @classmethod
    def from_command(cls) -> Actor:
        """The operating-system user running a management command."""
        return cls(f"cli:{_os_user()}", new_correlation_id(), "cli")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def key_payload(key: ApiKey) -> dict[str, object]:
    """What an audit event says about a key: never its secret."""
    return {"name": key.name, "prefix": key.prefix, "scopes": sorted(key.scope_set)}


def record_key_action(event_type: str, key: ApiKey, actor: Actor) -> None:
    """Write the audit event once the current transaction commits."""
    workspace_id = key.workspace.slug
    payload = key_payload(key)
    transaction.on_commit(lambda: _record(workspace_id, event_type, payload, actor))


def _record(workspace_id: str, event_type: str, payload: dict[str, object], actor: Actor) -> None:
    context = RequestContext(
        correlation_id=actor.correlation_id,
        transport=actor.transport,
        ip=actor.ip,
        service_topic=f"workspaces:{actor.transport}",
    )
    caller = Caller(workspace_id, actor.user_id)
    async_to_sync(record_action_now)(
        workspace_id, event_type, payload, caller=caller, context=context
    )
