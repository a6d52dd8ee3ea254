"""The control plane: small messages that every process of the service acts on.

Events travel on the broker's streams; what the processes tell each other travels here:
a tenant's credentials changed (a key revoked, a member removed or demoted: every open
connection of that workspace checks its credentials again at once, on every process, and
every process forgets what its authentication cache kept), a log level changed (every
process applies it). A message is a small dict with a ``kind``; :func:`on` registers what a
process does with a kind, :func:`broadcast` sends a message to every process, this one
included.

How messages travel is a port (:class:`Bus`): the Channels channel layer in the service
(``adapters/control_bus.py``: Redis pub/sub across processes and hosts, in memory in the
embedded mode), or nothing at all, in which case a message reaches this process only.
Delivery is at most once: a process that is disconnected from Redis when a message is sent
misses it. So nothing depends on it alone: the periodic re-check of open connections
(``EVENTS_WS_RECHECK_SECS``) and the cache's expiry (``EVENTS_AUTH_CACHE_SECS``) still
bound how long a change takes; the control plane only makes it immediate.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from asgiref.sync import async_to_sync

logger = logging.getLogger("events.control")

CREDENTIALS_CHANGED = "credentials.changed"
LOG_LEVEL_CHANGED = "logging.level"
KINDS = (CREDENTIALS_CHANGED, LOG_LEVEL_CHANGED)
MAX_FIELDS = 8
SEND_TIMEOUT_SECS = 2.0
_TEXT = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")

Message = dict[str, str]
Handler = Callable[[Message], Awaitable[Any] | Any]


class Bus(Protocol):
    """How control messages reach every process."""

    async def send(self, message: Message) -> None:
        """Send ``message`` to every process of the service, this one included."""


_handlers: dict[str, list[Handler]] = {}
_bus: Bus | None = None
_sending: set[asyncio.Task] = set()


def on(kind: str, handler: Handler) -> None:
    """Run ``handler`` (sync or async) with every message of ``kind`` this process receives."""
    if kind not in KINDS:
        raise ValueError(f"unknown control message kind {kind!r}")
    handlers = _handlers.setdefault(kind, [])
    if handler not in handlers:
        handlers.append(handler)


def use(bus: Bus | None) -> None:
    """Send messages through ``bus`` (None: to this process only)."""
    global _bus
    _bus = bus


def checked(message: Any) -> Message | None:
    """``message`` if it is a well-formed control message, else None (logged).

    Whoever can write to the broker's Redis can send one, so a message is bounded and
    checked like any input: a known kind, a few short fields of plain characters.
    """
    if not isinstance(message, dict) or len(message) > MAX_FIELDS:
        return _malformed(message)
    fields = {key: value for key, value in message.items() if key != "type"}
    if fields.get("kind") not in KINDS or not all(map(_plain, fields.items())):
        return _malformed(message)
    return fields


def _plain(field: tuple[Any, Any]) -> bool:
    """A field's name and value are short strings of plain characters."""
    return all(isinstance(part, str) and _TEXT.fullmatch(part) for part in field)


def _malformed(message: Any) -> Message | None:
    size = len(message) if isinstance(message, (dict, str, list)) else 0
    logger.warning("ignored a malformed control message (%s of %d)", type(message).__name__, size)
    return None


async def deliver(message: Any) -> None:
    """Act on one received message: run this process's handlers for its kind."""
    fields = checked(message)
    if fields is None:
        return
    for handler in list(_handlers.get(fields["kind"], ())):
        try:
            result = handler(fields)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("a control handler failed on %s", fields["kind"])


async def broadcast(kind: str, **fields: str) -> None:
    """Tell every process; never fails the caller (a bus that fails reaches this process)."""
    message = {"kind": kind, **fields}
    if checked(message) is None:
        raise ValueError(f"not a valid control message: {message!r}")
    if _bus is None:
        await deliver(message)
        return
    try:
        async with asyncio.timeout(SEND_TIMEOUT_SECS):
            await _bus.send(message)
    except Exception as exc:
        logger.warning(
            "control message %s not sent to other processes: %s", kind, type(exc).__name__
        )
        await deliver(message)


def broadcast_from_sync(kind: str, **fields: str) -> None:
    """:func:`broadcast` from sync code (a model signal, a management command).

    Called from a thread that runs an event loop, the message is sent from a task of that
    loop; from any other thread, before this returns.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(broadcast)(kind, **fields)
        return
    task = loop.create_task(broadcast(kind, **fields))
    _sending.add(task)
    task.add_done_callback(_sending.discard)


def forget() -> None:
    """No handlers and no bus (tests)."""
    _handlers.clear()
    use(None)
