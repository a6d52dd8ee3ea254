"""The healthcheck: do the broker and the history answer, within a second?

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

from events import outages
from events.broker import get_broker

logger = logging.getLogger("sysadmin.health")

OK = "ok"
TIMEOUT = "timeout"
FAILING = "failing"
Ping = Callable[[], Awaitable[None]]


async def ping_broker() -> None:
    """Raise unless the broker answers."""
    await get_broker().ping()


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


async def health() -> dict[str, Any]:
    """Check every dependency at once; ``healthy`` only if all are ``ok``."""
    timeout_secs = settings.HEALTHCHECK_TIMEOUT_MSECS / 1000
    checks = dependencies()
    results = await asyncio.gather(*(check(n, p, timeout_secs) for n, p in checks.items()))
    return {
        "healthy": all(result == OK for result in results),
        **dict(zip(checks, results, strict=True)),
        "replica": settings.EVENTS_REPLICA,
    }
