"""The ``error`` events of failures, kept while the broker is down.

An error event goes through the broker like any event. While the broker does
not answer, trying would only fail again (and log again): the event is kept in
a bounded queue of this process (``MAX_KEPT``, the oldest dropped first, and
counted) and published once the broker answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from events.event import ClientEvent
from events.realtime.publishing import publish
from kernel import outages
from kernel.caller import Caller
from kernel.context import RequestContext

logger = logging.getLogger("events.failures")

MAX_KEPT = 1000


@dataclass(frozen=True)
class ErrorEvent:
    """One failure's event, ready to publish."""

    workspace_id: str
    caller: Caller | None
    context: RequestContext
    where: str
    error: dict[str, Any]

    async def publish(self) -> None:
        """Publish it now (raises what the broker raises)."""
        event: ClientEvent = {
            "type": "error",
            "payload": {"where": self.where},
            "options": {"persist": True},
        }
        await publish(
            self.workspace_id, [event], caller=self.caller, context=self.context, error=self.error
        )


_kept: deque[ErrorEvent] = deque()
_tasks: set[asyncio.Task] = set()
_dropped = 0


def kept() -> int:
    """How many error events wait for the broker."""
    return len(_kept)


def _keep(event: ErrorEvent) -> None:
    global _dropped
    if len(_kept) >= MAX_KEPT:
        _kept.popleft()
        _dropped += 1
    _kept.append(event)


async def emit(event: ErrorEvent) -> None:
    """Publish the error event, or keep it for later while the broker is down."""
    if outages.is_down(outages.BROKER):
        _keep(event)
        return
    try:
        await event.publish()
    except Exception as exc:
        if outages.dependency_of(exc) != outages.BROKER:
            logger.exception("could not emit the error event")
            return
        outages.failed(outages.BROKER, exc, "an error event")
        _keep(event)


async def flush() -> int:
    """Publish the kept error events, oldest first; stop (keeping the rest) at a failure."""
    global _dropped
    sent = 0
    if _dropped:
        logger.warning("%d error events were dropped during the broker outage", _dropped)
        _dropped = 0
    while _kept:
        event = _kept.popleft()
        try:
            await event.publish()
        except Exception as exc:
            if outages.dependency_of(exc) == outages.BROKER:
                _kept.appendleft(event)
                return sent
            logger.exception("could not emit a kept error event")
            continue
        sent += 1
    return sent


def _flush_soon() -> None:
    """The broker answers again: publish what was kept, in the background."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if (not _kept and not _dropped) or _tasks:
        return  # one flush at a time keeps the kept events in order
    task = loop.create_task(flush(), name="error-events-flush")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def forget() -> None:
    """Forget the kept events (tests)."""
    global _dropped
    _kept.clear()
    _dropped = 0


outages.when_recovered(outages.BROKER, _flush_soon)
