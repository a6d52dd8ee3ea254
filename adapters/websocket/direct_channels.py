"""The consumer's two bypasses of Channels, where it does work an event frame never needs.

- ``server_send``: the server's own ``send`` below the session middleware.
  The session wrapper inspects the session on every message to save it on
  ``websocket.accept``; frames never need it, and that cost per delivery
  showed in profiles.
- ``skips_orm_cleanup``: Channels runs ``close_old_connections`` in the sync
  thread before every message: a thread hop that, under load, waits for the
  GIL and delayed each emit by milliseconds. Client frames only use the broker
  (re-checks of the credentials go through ``database_sync_to_async``, which
  cleans up itself).
"""

from __future__ import annotations

from typing import Any

from channels.sessions import InstanceSessionWrapper

# Frames whose handlers never touch the ORM: no database clean-up thread hop per frame.
ORM_FREE_MESSAGES = frozenset({"websocket.receive"})


def server_send(send: Any) -> Any:
    """The server's own send behind Channels' session wrapper (else ``send`` itself)."""
    wrapper = getattr(send, "__self__", None)
    if isinstance(wrapper, InstanceSessionWrapper):
        return wrapper.real_send
    return send


def skips_orm_cleanup(message: dict[str, Any]) -> bool:
    """Whether the consumer handles this message without Channels' ORM clean-up first."""
    return message["type"] in ORM_FREE_MESSAGES
