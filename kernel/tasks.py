"""Background work owned by the service process (the archiver, listeners).

Apps register a starter with :func:`register`; the ASGI application
(:mod:`events.realtime.lifecycle`) calls :func:`ensure_started` at the server's
lifespan startup or on its first request or connection in an event loop, so
the work runs in the server's loop whatever the server (Daphne, uvicorn).
Each starter returns the tasks it started; :func:`stop_all` cancels them once
a stop has drained them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("events.background")

Starter = Callable[[], Awaitable[list[asyncio.Task]]]
_starters: list[Starter] = []
_started: dict[asyncio.AbstractEventLoop, list[asyncio.Task]] = {}


def register(starter: Starter) -> Starter:
    """Register a starter (usable as a decorator); it runs once per event loop."""
    if starter not in _starters:
        _starters.append(starter)
    return starter


async def ensure_started() -> None:
    """Run every starter once in the running loop."""
    loop = asyncio.get_running_loop()
    if loop in _started:
        return
    tasks: list[asyncio.Task] = []
    _started[loop] = tasks
    for starter in _starters:
        try:
            tasks.extend(await starter())
        except Exception:
            logger.exception("background work %s did not start", starter.__qualname__)


async def stop_all() -> None:
    """Cancel the background tasks of the running loop (tests, shutdown)."""
    tasks = _started.pop(asyncio.get_running_loop(), [])
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
