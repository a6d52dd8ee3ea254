"""A tenant's credentials changed: forget them here at once, tell every process on commit.

A key revoked or deleted, a member added, removed or given another role, a workspace
saved or deleted: this process's authentication cache forgets what it kept
(``workspaces.authcache``), and once the transaction commits the control plane
(``events.realtime.control``) tells every process of the service, which forgets too and
checks every open connection of that workspace again at once
(``events.realtime.recheck``): a revoked key's WebSockets close within moments on every
host, not at their next periodic re-check.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from events.realtime import control
from workspaces import authcache

logger = logging.getLogger("workspaces.changes")


def workspace_of(instance: Any) -> str | None:
    """The slug of the workspace a changed row belongs to."""
    from workspaces.models import Workspace

    if isinstance(instance, Workspace):
        return instance.slug
    workspace = getattr(instance, "workspace", None)
    return getattr(workspace, "slug", None)


def credentials_changed(workspace_id: str | None) -> None:
    """Forget here now; on commit, have every process forget and re-check that workspace.

    Once per workspace and transaction: deleting a workspace with a thousand keys is one
    message, not a thousand.
    """
    authcache.forget_all()
    if workspace_id and not _told_on_commit(workspace_id):
        transaction.on_commit(_TellEveryone(workspace_id))


class _TellEveryone:
    """The on-commit callback for one workspace (recognisable among the pending ones)."""

    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id

    def __call__(self) -> None:
        _tell_everyone(self.workspace_id)


def _told_on_commit(workspace_id: str) -> bool:
    """Whether this transaction will already tell every process about ``workspace_id``."""
    pending = transaction.get_connection().run_on_commit
    return any(
        getattr(callback, "workspace_id", None) == workspace_id for _, callback, _ in pending
    )


def _tell_everyone(workspace_id: str) -> None:
    try:
        control.broadcast_from_sync(control.CREDENTIALS_CHANGED, workspace=workspace_id)
    except Exception as exc:  # the change is made; the periodic re-check still applies it
        logger.warning(
            "could not tell other processes about %s: %s", workspace_id, type(exc).__name__
        )


def _on_row_change(instance: Any, **_: Any) -> None:
    credentials_changed(workspace_of(instance))


def forget_here(_message: control.Message) -> None:
    """Control handler: another process changed credentials; forget what this one kept."""
    authcache.forget_all()


def connect() -> None:
    """Watch keys, members and workspaces; forget when another process says so."""
    from workspaces.models import ApiKey, Membership, Workspace

    for model in (ApiKey, Membership, Workspace):
        uid = f"credentials-{model.__name__}"
        post_save.connect(_on_row_change, sender=model, dispatch_uid=f"{uid}-save", weak=False)
        post_delete.connect(_on_row_change, sender=model, dispatch_uid=f"{uid}-del", weak=False)
    control.on(control.CREDENTIALS_CHANGED, forget_here)
