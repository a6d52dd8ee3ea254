"""The consumer's two bypasses of Channels, where it does work a frame never needs.

- ``server_send``: the server's own ``send`` below the session middleware
  (``InstanceSessionWrapper.real_send``, not an API). The session wrapper
  inspects the session on every message to save it on ``websocket.accept``;
  frames never need it, and that cost per delivery showed in profiles. The
  server's own ``send`` is also where adapters/servers/ (uvicorn.py, daphne.py) find
  the socket.
- ``skips_orm_cleanup``: Channels runs ``close_old_connections`` in the sync
  thread before every message: a thread hop that, under load, waits for the
  GIL and delayed each emit by milliseconds. Client frames only use the broker
  (a re-check of the credentials goes through ``database_sync_to_async``,
  which cleans up itself).

Both behind ``EVENTS_DIRECT_WRITES`` and the pinned Channels (kernel/fastpaths.py).
"""

from __future__ import annotations

from typing import Any

from channels.sessions import InstanceSessionWrapper

from kernel.fastpaths import FastPath

PATH = FastPath("Channels bypasses", {"channels": "4.3.2"})
# Frames whose handlers never touch the ORM: no database clean-up thread hop per frame.
ORM_FREE_MESSAGES = frozenset({"websocket.receive"})


def server_send(send: Any) -> Any:
    """The server's own send behind Channels' session wrapper (else ``send`` itself)."""
    wrapper = getattr(send, "__self__", None)
    if not isinstance(wrapper, InstanceSessionWrapper) or not PATH.usable():
        return send
    if PATH.lacks(wrapper, ("real_send",), "InstanceSessionWrapper."):
        return send
    return wrapper.real_send


def skips_orm_cleanup(message: dict[str, Any]) -> bool:
    """Whether the consumer handles this message without Channels' ORM clean-up first."""
    return message["type"] in ORM_FREE_MESSAGES and PATH.usable()
