"""The healthcheck: do the broker and the history answer, within a second? Does the archiver
of this process make progress?

Each dependency is pinged concurrently under its own timeout, so a hung
Redis or Elasticsearch turns into a prompt ``503`` naming it instead of a
healthcheck that hangs with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from events.broker import get_archive_queue
from kernel import outages

logger = logging.getLogger("sysadmin.health")

OK = "ok"
TIMEOUT = "timeout"
FAILING = "failing"
OFF = "off"  # no archiver runs in this process (ARCHIVE_IN_PROCESS=false, or not started)
Ping = Callable[[], Awaitable[None]]


async def ping_broker() -> None:
    """Raise unless the broker answers."""
    await get_archive_queue().ping()


async def ping_history() -> None:
    """Raise unless the history answers."""
    from history import get_history

    await get_history().ping()


async def check(name: str, ping: Ping, timeout_secs: float) -> str:
    """Ping one dependency; return ``ok``, ``timeout`` or ``failing``."""
    try:
        await asyncio.wait_for(ping(), timeout_secs)
    except TimeoutError as exc:
        outages.failed(name, exc, f"the health check (no answer within {timeout_secs:.1f}s)")
        return TIMEOUT
    except Exception as exc:
        outages.failed(name, exc, "the health check")  # one stack per outage
        return FAILING
    outages.answered(name)
    return OK


def dependencies() -> dict[str, Ping]:
    """What the service needs to answer, by name."""
    return {"broker": ping_broker, "history": ping_history}


def archiver_state() -> tuple[str, str | None]:
    """``ok``, ``failing`` (with the reason) or ``off`` for the archivers of this process."""
    from history.archiver import running_problems

    problems = running_problems()
    if problems is None:
        return OFF, None
    if problems:
        return FAILING, "; ".join(problems)
    return OK, None


async def health() -> dict[str, Any]:
    """Check every dependency at once; ``healthy`` only if all are ``ok``, and the archiver."""
    timeout_secs = settings.HEALTHCHECK_TIMEOUT_MSECS / 1000
    checks = dependencies()
    results = await asyncio.gather(*(check(n, p, timeout_secs) for n, p in checks.items()))
    archiver, reason = archiver_state()
    report: dict[str, Any] = {
        "healthy": all(result == OK for result in results) and archiver != FAILING,
        **dict(zip(checks, results, strict=True)),
        "archiver": archiver,
        "replica": settings.EVENTS_REPLICA,
    }
    if reason:
        report["reasons"] = {"archiver": reason}
    return report
