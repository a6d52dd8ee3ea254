"""Credentials checked again while a connection stays open.

A WebSocket is authenticated at its handshake and may then stay open for
days. So that a revoked API key, an expired token, a removed member or a
lowered role take effect on connections that are already open, each one runs
its authentication again every ``EVENTS_WS_RECHECK_SECS`` (the first time at
a random point within the period, so that connections opened together do not
all check together). A timer per connection, not a task: an idle connection
costs a few hundred bytes for it.

When a workspace's credentials change (a key revoked, a member removed or demoted), the
control plane (``events.realtime.control``) tells every process, and
:func:`check_workspace_now` runs the check of each of that workspace's connections at
once instead of at its next turn.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable

logger = logging.getLogger("events.recheck")

_random = secrets.SystemRandom()
_by_workspace: dict[str, weakref.WeakSet[Recheck]] = {}


class Recheck:
    """Calls ``check`` every ``every_secs`` until it returns False or ``stop`` is called."""

    def __init__(
        self,
        every_secs: float,
        check: Callable[[], Awaitable[bool]],
        *,
        workspace_id: str | None = None,
    ) -> None:
        self.every_secs = every_secs
        self.check = check
        self.workspace_id = workspace_id
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._again = False

    def start(self) -> None:
        """Schedule the first check, at a random point of the first period."""
        if self.workspace_id is not None:
            _by_workspace.setdefault(self.workspace_id, weakref.WeakSet()).add(self)
        if self.every_secs > 0:
            self._schedule(_random.uniform(0.5, 1.0) * self.every_secs)

    def now(self) -> None:
        """Check at once (unless a check is under way), then again every period."""
        if self._task is not None:
            # The check under way may have read the credentials before they changed.
            self._again = True
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._fire()

    def stop(self) -> None:
        """No more checks (a check under way is cancelled)."""
        if self.workspace_id is not None:
            group = _by_workspace.get(self.workspace_id)
            if group is not None:
                group.discard(self)
                if not group:
                    del _by_workspace[self.workspace_id]
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._timer = self._task = None

    def _schedule(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        # A context of its own: not the one of whoever asked for the check (a control
        # message delivered from a sync_to_async thread would hand over a dead executor).
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="recheck", context=contextvars.Context())

    async def _run(self) -> None:
        try:
            go_on = await self.check()
        except Exception:
            # The database away for a moment must not close every connection: try again later.
            logger.exception("could not check a connection's credentials again")
            go_on = True
        self._task = None
        if go_on and self._again:
            self._again = False
            self.now()
        elif go_on and self.every_secs > 0:
            self._schedule(self.every_secs)
        elif not go_on:
            self.stop()


def check_workspace_now(message: dict[str, str]) -> int:
    """Control handler: check every open connection of ``message["workspace"]`` now."""
    workspace_id = message.get("workspace", "")
    rechecks = list(_by_workspace.get(workspace_id, ()))
    for recheck in rechecks:
        recheck.now()
    if rechecks:
        logger.info("%s: %d open connections checked again", workspace_id, len(rechecks))
    return len(rechecks)
