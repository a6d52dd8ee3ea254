"""The archiver: every event the broker carries, written to the history.

It claims events from the broker's archive queue (``ArchiveQueue.claim``), collects a
batch until ``ARCHIVE_BATCH_SIZE`` events or ``ARCHIVE_FLUSH_MSECS`` after the
first one, stores the persistent ones, and only then acknowledges the whole
batch to the broker: at least once. The history keeps one copy per event id,
so an event read twice (a restarted or dead archiver's batch, claimed again)
is stored once. While the history is down the batch is retried with backoff
and new events wait in the broker; the backlog is published as a metric.
Several archivers may run at once (``manage.py archive`` processes, service
processes): the broker gives each event to one of them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings

from events.broker import ArchiveItem, ArchiveQueue, get_archive_queue
from events.event import is_persistent
from events.metrics import ARCHIVE_FAILURES, STORED, set_backlog
from events.realtime.failures import report_failure
from events.realtime.lifecycle import on_stop
from history import get_history
from history.base import History, HistoryUnavailable
from kernel import outages
from kernel.caller import PLATFORM_WORKSPACE
from kernel.context import RequestContext, new_correlation_id

logger = logging.getLogger("history.archiver")

RETRY_MIN_SECS = 0.2
RETRY_MAX_SECS = 5.0
COLLECT_PAUSE_SECS = 0.1
BACKLOG_EVERY_SECS = 5.0
RETENTION_EVERY_SECS = 3600.0


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that a callee swallowed.

    ``sync_to_async`` (the SQLite history) waits for its thread and returns normally
    when cancelled mid-call; the task stays "cancelling" and must stop here.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


def consumer_name() -> str:
    """A name unique to this archiver among every process sharing the broker."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Progress:
    """How an archiver is doing, for the health check."""

    last_cycle: float = field(default_factory=time.monotonic)
    failures: int = 0
    last_error: str = ""

    def succeeded(self) -> None:
        """A cycle completed."""
        self.last_cycle = time.monotonic()
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        """An attempt failed (the class only: the health check needs no credentials)."""
        self.failures += 1
        self.last_error = type(exc).__name__

    def problem(self) -> str | None:
        """Why this archiver cannot make progress, or None."""
        if self.failures >= settings.ARCHIVE_UNHEALTHY_FAILURES:
            return f"{self.failures} failures in a row, the last {self.last_error}"
        idle = time.monotonic() - self.last_cycle
        if idle > settings.ARCHIVE_STALL_SECS:
            return f"no cycle completed for {idle:.0f}s"
        return None


_running: dict[int, Progress] = {}


def running_problems() -> list[str] | None:
    """What keeps this process's running archivers from progressing; None if none runs."""
    if not _running:
        return None
    return [problem for progress in _running.values() if (problem := progress.problem())]


@dataclass
class Archiver:
    """Moves events from the broker to the history, in batches, at least once."""

    queue: ArchiveQueue
    history: History
    batch_size: int = 500
    flush_msecs: int = 1000
    retention_days: int = 0
    consumer: str = field(default_factory=consumer_name)
    progress: Progress = field(default_factory=Progress)
    _backlog_at: float = 0.0
    _retention_at: float = 0.0
    stopping: bool = False

    async def run(self) -> None:
        """Archive until cancelled or stopped; report an unexpected error and go on, backing off."""
        logger.info("archiver %s started", self.consumer)
        _running[id(self)] = self.progress = Progress()
        try:
            await self._run()
        finally:
            _running.pop(id(self), None)

    async def _run(self) -> None:
        delay = RETRY_MIN_SECS
        while not self.stopping:
            try:
                await self.step()
                outages.answered(outages.BROKER)
                self.progress.succeeded()
                delay = RETRY_MIN_SECS
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.progress.failed(exc)
                await report_archiver_failure(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECS)

    async def finish(self, running: asyncio.Task | None = None) -> int:
        """Stop after the batch in hand, then archive what the broker still holds; how many."""
        self.stopping = True
        if running is not None:
            await running
        archived = 0
        while batch := await self.queue.claim(self.consumer, count=self.batch_size, block_ms=0):
            await self.archive(batch)
            archived += len(batch)
        logger.info("archiver %s stopped; %d events archived at the stop", self.consumer, archived)
        return archived

    async def step(self) -> int:
        """Archive one batch (waiting up to the flush time for it); return its size."""
        raise_if_cancelled()
        batch = await self.collect()
        if batch:
            await self.archive(batch)
        await self._periodic()
        return len(batch)

    async def collect(self) -> list[ArchiveItem]:
        """Read until the batch is full or the flush time after its first event."""
        batch = await self.queue.claim(
            self.consumer, count=self.batch_size, block_ms=self.flush_msecs
        )
        deadline = time.monotonic() + self.flush_msecs / 1000
        while batch and len(batch) < self.batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # Pause, then take what came: a blocking read returned for each event,
            # one broker round trip per event while the service was busiest.
            await asyncio.sleep(min(COLLECT_PAUSE_SECS, left))
            batch += await self.queue.claim(
                self.consumer, count=self.batch_size - len(batch), block_ms=0
            )
        return batch

    async def archive(self, batch: list[ArchiveItem]) -> None:
        """Store a batch (retrying until the history takes it), then acknowledge it."""
        envelopes = [item.envelope for item in batch if is_persistent(item.envelope)]
        delay = RETRY_MIN_SECS
        while True:
            try:
                await self.history.store(envelopes)
                outages.answered(outages.HISTORY)
                break
            except HistoryUnavailable as exc:
                raise_if_cancelled()
                ARCHIVE_FAILURES.inc()
                self.progress.failed(exc)
                await self._report_waiting(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECS)
        await self.queue.ack(batch)
        STORED.inc(len(envelopes))

    async def _report_waiting(self, exc: Exception, delay: float) -> None:
        backlog = await self._backlog()
        waiting = "an unknown number of" if backlog is None else str(backlog)
        where = f"the archiver ({waiting} events wait in the broker; retrying in {delay:.1f}s)"
        outages.failed(outages.HISTORY, exc, where)  # one stack per outage

    async def _backlog(self) -> int | None:
        backlog = await self.queue.backlog()
        set_backlog(backlog)
        self._backlog_at = time.monotonic()
        return backlog

    async def _periodic(self) -> None:
        now = time.monotonic()
        if now - self._backlog_at >= BACKLOG_EVERY_SECS:
            await self._backlog()
        if self.retention_days and now - self._retention_at >= RETENTION_EVERY_SECS:
            self._retention_at = now
            await apply_retention(self.history, self.retention_days)


async def report_archiver_failure(exc: Exception) -> None:
    """Log the failure with its stack and write its ``error`` event to the platform."""
    context = RequestContext(correlation_id=new_correlation_id(), transport="archiver")
    await report_failure(
        exc, workspace_id=PLATFORM_WORKSPACE, caller=None, context=context, where="archiver"
    )


async def apply_retention(history: History, days: int) -> int:
    """Remove events older than ``days`` days; return how many."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    deleted = await history.delete_older_than(cutoff)
    logger.info("retention: removed %d events created before %s", deleted, cutoff.isoformat())
    return deleted


def archiver_from_settings(queue: ArchiveQueue, history: History) -> Archiver:
    """An archiver configured by the ARCHIVE_* and EVENTS_RETENTION_DAYS settings."""
    return Archiver(
        queue,
        history,
        batch_size=settings.ARCHIVE_BATCH_SIZE,
        flush_msecs=settings.ARCHIVE_FLUSH_MSECS,
        retention_days=settings.EVENTS_RETENTION_DAYS,
    )


async def start_in_process() -> list[asyncio.Task]:
    """The service process's archiver (``ARCHIVE_IN_PROCESS``), started by kernel.tasks."""
    if not settings.ARCHIVE_IN_PROCESS:
        return []
    archiver = archiver_from_settings(get_archive_queue(), get_history())
    task = asyncio.get_running_loop().create_task(archiver.run(), name="archiver")
    on_stop(functools.partial(archiver.finish, task))
    return [task]
