"""The caller: who is asking, in which workspace, and what they may do.

Authentication (JWT, API key, Django session) turns credentials into a
:class:`Caller`; everything else asks the caller, never the credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The operators' audit workspace (sys.logging.updated, sys.heapdump.created, ...): the
# service writes to it; nobody may create a workspace of that id and read it.
PLATFORM_WORKSPACE = "platform"
RESERVED_WORKSPACE_IDS = frozenset({PLATFORM_WORKSPACE})


def is_reserved_workspace(workspace_id: str) -> bool:
    """Whether a workspace id is the service's own (compared without case)."""
    return workspace_id.lower() in RESERVED_WORKSPACE_IDS


OWNER, EDITOR, VIEWER = "owner", "editor", "viewer"
ROLES = (OWNER, EDITOR, VIEWER)
EMIT, CONSUME, SEARCH, AGGREGATE = "emit", "consume", "search", "aggregate"
KEY_SCOPES = (EMIT, CONSUME, SEARCH)

ROLE_ACTIONS: dict[str, frozenset[str]] = {
    OWNER: frozenset({EMIT, CONSUME, SEARCH, AGGREGATE}),
    EDITOR: frozenset({EMIT, CONSUME, SEARCH}),
    VIEWER: frozenset({CONSUME, SEARCH}),
}


@dataclass(frozen=True)
class Caller:
    """An authenticated caller acting in one workspace."""

    workspace_id: str
    user_id: str
    session_id: str | None = None
    role: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    api_key_name: str | None = None
    # The API key's own public id (its prefix), unique where names are not.
    api_key_id: str | None = None

    @classmethod
    def for_user(
        cls, workspace_id: str, user_id: str, role: str, session_id: str | None = None
    ) -> Caller:
        """A person with a role in the workspace."""
        return cls(workspace_id, user_id, session_id, role, ROLE_ACTIONS.get(role, frozenset()))

    @classmethod
    def for_api_key(
        cls, workspace_id: str, name: str, scopes: frozenset[str], key_id: str | None = None
    ) -> Caller:
        """A trusted service holding one of the workspace's API keys."""
        return cls(workspace_id, f"apikey:{name}", None, None, frozenset(scopes), name, key_id)

    @property
    def identity(self) -> str:
        """Who this caller is, one string per credential: an API key's id, else the user."""
        if self.is_api_key:
            return f"apikey:{self.api_key_id or self.api_key_name}"
        return f"user:{self.user_id}"

    @property
    def is_api_key(self) -> bool:
        """Whether the caller authenticated with an API key."""
        return self.api_key_name is not None

    @property
    def reads_everything(self) -> bool:
        """Owners and API keys read targeted events of others."""
        return self.role == OWNER or self.is_api_key

    def can(self, action: str) -> bool:
        """Whether the caller may perform an action (emit, consume, search, aggregate)."""
        return action in self.scopes

    def can_read(self, event: Mapping[str, Any]) -> bool:
        """Whether the caller may read this event (targeted events are private)."""
        target = event.get("target")
        if not target or self.reads_everything:
            return True
        if target.get("userId") and target.get("userId") == self.user_id:
            return True
        return bool(self.session_id and target.get("sessionId") == self.session_id)
