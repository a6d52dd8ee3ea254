"""Start and stop of a service process: a stop drains before the process exits.

A stop (SIGINT, SIGTERM) must not lose what the service acknowledged. In order:
the server stops accepting; every open WebSocket is closed with 1001 (going away,
so clients reconnect elsewhere and resume with ``lastEventId``) and its
``events.unsubscribed`` audit is queued; the service's own events queue
(:mod:`events.realtime.outbox`) is published; the registered drains run (the archiver
finishes its batch and archives what the broker still holds: with the embedded
broker, that is everything not yet in the history); background tasks stop.
Each step is bounded, the whole by ``STOP_TIMEOUT_SECS`` (20 s: give the process
manager more grace than that, e.g. ``docker stop -t 30``).

How the stop reaches the application depends on the server:
- uvicorn (and any ASGI server with the lifespan protocol): ``lifespan.startup``
  starts the background work; ``lifespan.shutdown`` drains. uvicorn closes the
  sockets itself before the shutdown (with 1012) unless the service got there
  first: the lifespan startup puts a signal handler in front of uvicorn's that
  closes them with 1001, then lets uvicorn go on.
- Daphne has no lifespan protocol: a Twisted "before shutdown" trigger, registered
  when the application is built (before Daphne's own, which cancels every
  connection's application), closes the sockets and drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import weakref
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any, Protocol

from events.realtime import error_events, outbox
from kernel import tasks

logger = logging.getLogger("events.lifecycle")

STOP_TIMEOUT_SECS = 20.0
CLOSE_TIMEOUT_SECS = 2.0
GOING_AWAY = 1001

Drain = Callable[[], Awaitable[Any]]
_drains: dict[asyncio.AbstractEventLoop, list[Drain]] = {}


class Leaving(Protocol):
    """A connection the service closes itself when the process stops."""

    def close_now(self, code: int) -> None:
        """Send the close frame now, if the connection can without the event loop."""

    async def go_away(self, code: int) -> None:
        """Close with ``code`` and clean up as a disconnect does."""


_open: weakref.WeakSet[Any] = weakref.WeakSet()
_closing: set[asyncio.Task] = set()
# The event loops whose server is stopping: a connection that arrives now is ended at once.
_stopping: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def on_stop(drain: Drain) -> Drain:
    """Register work a stop of the running event loop's server waits for."""
    _drains.setdefault(asyncio.get_running_loop(), []).append(drain)
    return drain


def opened(connection: Leaving) -> None:
    """A connection to close with 1001 at a stop."""
    _open.add(connection)


def closed(connection: Leaving) -> None:
    _open.discard(connection)


def stopping() -> bool:
    """Whether this event loop's server is stopping (its connections are being closed)."""
    return asyncio.get_running_loop() in _stopping


def close_connections() -> None:
    """Start closing every open connection with 1001 (the drain waits for them)."""
    _stopping.add(asyncio.get_running_loop())
    for connection in list(_open):
        _open.discard(connection)
        try:
            connection.close_now(GOING_AWAY)
        except Exception:
            logger.exception("stop: could not close a connection at once")
        task = asyncio.get_running_loop().create_task(connection.go_away(GOING_AWAY))
        _closing.add(task)
        task.add_done_callback(_closing.discard)


async def _step(name: str, work: Awaitable[Any], limit_secs: float) -> None:
    try:
        async with asyncio.timeout(limit_secs):
            await work
    except TimeoutError:
        logger.error("stop: %s did not finish within %.0f s", name, limit_secs)
    except Exception:
        logger.exception("stop: %s failed", name)


async def drain() -> None:
    """Everything a stop does, in order, within ``STOP_TIMEOUT_SECS`` in all."""
    deadline = asyncio.get_running_loop().time() + STOP_TIMEOUT_SECS

    def left(share: float = 1.0) -> float:
        return max(0.1, (deadline - asyncio.get_running_loop().time()) * share)

    logger.info("stopping: closing %d connections, then draining", len(_open))
    close_connections()
    if _closing:
        await _step("closing connections", asyncio.wait(set(_closing)), CLOSE_TIMEOUT_SECS)
    await _step("own events", outbox.flush(), left(0.25))
    await _step("kept error events", error_events.flush(), left(0.25))
    for work in _drains.pop(asyncio.get_running_loop(), []):
        name = getattr(work, "__qualname__", None) or repr(work)
        await _step(name, work(), left(0.8))
    await _step("own events", outbox.flush(), left())
    if outbox.queued() or error_events.kept():
        logger.error(
            "stopped with %d audit and %d error events unpublished (the broker did not answer)",
            outbox.queued(),
            error_events.kept(),
        )
    await outbox.close()
    await tasks.stop_all()
    logger.info("stopped")


def _close_first(previous: Any) -> Callable[[int, FrameType | None], None]:
    """A signal handler that closes the connections with 1001, then calls ``previous``."""
    loop = asyncio.get_running_loop()

    def handler(signum: int, frame: FrameType | None) -> None:
        async def then() -> None:
            try:
                close_connections()
                if _closing:
                    await _step(
                        "closing connections", asyncio.wait(set(_closing)), CLOSE_TIMEOUT_SECS
                    )
            finally:
                previous(signum, frame)  # the server's own handler: it must always hear it

        def start() -> None:
            task = loop.create_task(then())
            _closing.add(task)  # a reference, or the task may be collected before it runs
            task.add_done_callback(_closing.discard)

        loop.call_soon_threadsafe(start)

    return handler


def _put_in_front_of_server_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        if callable(previous):
            with contextlib.suppress(ValueError):  # not the main thread: the server stops us
                signal.signal(signum, _close_first(previous))


def _on_twisted_stop() -> None:
    """Under Daphne: drain before Twisted stops (its trigger cancels every connection)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or "daphne.server" not in sys.modules:
        return
    from twisted.internet import defer

    def before_shutdown() -> defer.Deferred:
        close_connections()  # now: Daphne's own trigger, next, cancels every connection
        return defer.Deferred.fromFuture(asyncio.ensure_future(drain()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)


class LifecycleMiddleware:
    """ASGI middleware: background work starts with the process, a stop drains."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        _on_twisted_stop()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        await tasks.ensure_started()
        await self.app(scope, receive, send)

    async def lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await tasks.ensure_started()
                _put_in_front_of_server_signals()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await drain()
                await send({"type": "lifespan.shutdown.complete"})
                return
