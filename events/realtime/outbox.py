"""The service's own events (audit, errors), queued and published in batches.

Publishing each action on its own costs a broker round trip and, under a
burst, a Redis connection each: when 10,000 sockets of a process closed at
once, the pool grew past what Redis accepts and most ``events.unsubscribed``
events were lost. Here an action is encoded at once (its time and source are
the action's) and queued in the process; one writer task per event loop
publishes the queue in batches, one call per workspace in order, so a burst
costs a few round trips over one connection. What the broker refuses (it is
down, restarting, out of connections) stays queued and is retried with
backoff until the broker answers. A stop waits for the queue with
:func:`flush`. The queue is bounded (``MAX_QUEUED``): past it the oldest
entries are dropped, counted in ``events_own_dropped_total`` and logged, so
no loss is silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from dataclasses import dataclass

from events.broker import get_live_stream
from events.metrics import EMITTED, OWN_DROPPED, OWN_QUEUED
from kernel import outages

logger = logging.getLogger("events.outbox")

MAX_QUEUED = 100_000
BATCH = 500
RETRY_FIRST_SECS = 0.05
RETRY_MAX_SECS = 5.0


@dataclass(frozen=True)
class Pending:
    """One encoded event waiting for the broker."""

    workspace_id: str
    data: bytes
    transport: str


def by_workspace(batch: list[Pending]) -> dict[str, list[Pending]]:
    """The batch split per workspace, each in the order it was queued."""
    groups: dict[str, list[Pending]] = {}
    for pending in batch:
        groups.setdefault(pending.workspace_id, []).append(pending)
    return groups


class Outbox:
    """The queue of one event loop and the task that empties it."""

    def __init__(self) -> None:
        self.queue: deque[Pending] = deque()
        self.wake = asyncio.Event()
        self.empty = asyncio.Event()
        self.empty.set()
        self.writer: asyncio.Task | None = None
        self.failing = False

    def put(self, pending: Pending) -> None:
        """Queue an event; the writer publishes it soon."""
        if len(self.queue) >= MAX_QUEUED:
            dropped = self.queue.popleft()
            OWN_DROPPED.inc()
            logger.error("own events queue full: dropped a %s event", dropped.workspace_id)
        self.queue.append(pending)
        OWN_QUEUED.set(len(self.queue))
        self.empty.clear()
        self.wake.set()
        if self.writer is None or self.writer.done():
            self.writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        delay = RETRY_FIRST_SECS
        while True:
            if not self.queue:
                self.empty.set()
                self.wake.clear()
                await self.wake.wait()
                continue
            try:
                await self._publish_batch()
            except Exception as exc:
                if outages.dependency_of(exc) is None:
                    self._refused(exc)  # not an outage: retrying would block the rest forever
                    continue
                self._failed(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECS)
                continue
            if self.failing:
                self.failing = False
                logger.warning("own events published again (%d queued)", len(self.queue))
            delay = RETRY_FIRST_SECS

    def _refused(self, exc: Exception) -> None:
        """The broker refused the head group for good: drop it (counted, logged), go on."""
        head = self.queue[0].workspace_id
        group = [p for p in self.queue if p.workspace_id == head]
        self.queue = deque(p for p in self.queue if p.workspace_id != head)
        OWN_DROPPED.inc(len(group))
        OWN_QUEUED.set(len(self.queue))
        logger.error("the broker refused %d own events of %s", len(group), head, exc_info=exc)

    def _failed(self, exc: Exception, delay: float) -> None:
        where = (
            f"publishing {len(self.queue)} queued audit and error events (retry in {delay:.2f}s)"
        )
        dependency = outages.dependency_of(exc)
        if dependency:
            outages.failed(dependency, exc, where)  # one stack per outage, then one line each
        elif not self.failing:
            logger.error("own events not published: %s", where, exc_info=exc)
        else:
            logger.warning("own events still not published: %s", where)
        self.failing = True

    async def _publish_batch(self) -> None:
        """Publish the head of the queue; what a failure left unpublished goes back in front."""
        batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
        groups = list(by_workspace(batch).items())
        stream = get_live_stream()
        for done, (workspace_id, group) in enumerate(groups):
            try:
                await stream.append(workspace_id, [p.data for p in group])
                outages.answered(outages.BROKER)
            except BaseException:
                self.queue.extendleft(reversed([p for _, g in groups[done:] for p in g]))
                raise
            finally:
                OWN_QUEUED.set(len(self.queue))
            for pending in group:
                EMITTED.labels(transport=pending.transport).inc()

    async def flush(self) -> None:
        """Wait until everything queued so far and since is published."""
        await self.empty.wait()

    async def close(self) -> None:
        """Stop the writer (after :meth:`flush`: whatever is still queued stays here)."""
        writer, self.writer = self.writer, None
        if writer is not None and not writer.done():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer


_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = (
    weakref.WeakKeyDictionary()
)


def outbox() -> Outbox:
    """The running event loop's outbox."""
    loop = asyncio.get_running_loop()
    box = _outboxes.get(loop)
    if box is None:
        box = _outboxes[loop] = Outbox()
    return box


def queued() -> int:
    """How many events the running loop's outbox still holds."""
    box = _outboxes.get(asyncio.get_running_loop())
    return len(box.queue) if box is not None else 0


async def flush() -> None:
    """Wait until the running loop's outbox is empty (bound it with ``asyncio.timeout``)."""
    box = _outboxes.get(asyncio.get_running_loop())
    if box is not None:
        await box.flush()


async def close() -> None:
    """Stop the running loop's writer: the last step of a stop, after :func:`flush`."""
    box = _outboxes.get(asyncio.get_running_loop())
    if box is not None:
        await box.close()
