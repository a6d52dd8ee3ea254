"""Log levels changed at run time, in every process of the service.

:func:`set_level` changes a logger here; :func:`broadcast` publishes the
change on Redis (``settings.REDIS_URL``) and remembers it in a hash, and
:func:`listen`, a background task in each service process, applies what the
others publish, and on start what they published before it started.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from django.conf import settings

from kernel.errors import ValidationError

logger = logging.getLogger("sysadmin.loglevels")

ROOT = "root"
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
LOGGER_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")
CHANNEL = "events:sys:logging"
LEVELS_KEY = "events:sys:logging:levels"
RETRY_SECS = 1.0
SERVICE_LOGGERS = ("events", "history", "workspaces", "sysadmin", "django")
Apply = Callable[[str, str], None]


def _logger(name: str) -> logging.Logger:
    return logging.getLogger() if name == ROOT else logging.getLogger(name)


def level_of(name: str) -> str:
    """The effective level of a logger, by name (``root`` for the root logger)."""
    return logging.getLevelName(_logger(name).getEffectiveLevel())


def known_loggers() -> list[str]:
    """``root``, the service's own loggers and every logger named so far, sorted."""
    names = set(logging.root.manager.loggerDict) | set(SERVICE_LOGGERS)
    return [ROOT, *sorted(names)]


def levels(name: str | None = None) -> dict[str, str]:
    """The effective level of one logger, or of every known logger."""
    if name is not None:
        return {check_name(name): level_of(name)}
    return {logger_name: level_of(logger_name) for logger_name in known_loggers()}


def check_name(name: str) -> str:
    """Return a valid logger name or raise ValidationError."""
    if not LOGGER_NAME.match(name):
        raise ValidationError(
            "logger must be 1 to 200 letters, digits, '.', '_' or '-'", details={"field": "logger"}
        )
    return name


def check_level(level: str) -> str:
    """Return a level name in upper case or raise ValidationError."""
    upper = level.upper() if isinstance(level, str) else ""
    if upper not in LEVELS:
        raise ValidationError(
            f"level must be one of {', '.join(LEVELS)}", details={"field": "level"}
        )
    return upper


def apply_level(name: str, level: str) -> None:
    """Set a logger's level in this process (``NOTSET`` makes it inherit again)."""
    _logger(name).setLevel(level)


def set_level(name: str, level: str) -> tuple[str, str]:
    """Validate and apply a level here; return the previous and the new effective level."""
    check_name(name)
    level = check_level(level)
    previous = level_of(name)
    apply_level(name, level)
    return previous, level_of(name)


def _client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, socket_connect_timeout=2)


async def broadcast(name: str, level: str, *, url: str | None = None) -> bool:
    """Publish a change to the other processes; False without Redis."""
    url = url if url is not None else settings.REDIS_URL
    if not url:
        return False
    message = orjson.dumps({"logger": name, "level": level, "replica": settings.EVENTS_REPLICA})
    client = _client(url)
    try:
        await client.hset(LEVELS_KEY, name, level)
        await client.publish(CHANNEL, message)
    finally:
        await client.aclose()
    return True


def handle_message(data: bytes, apply: Apply) -> None:
    """Apply one published change; log and skip a malformed one."""
    try:
        change = orjson.loads(data)
        _apply_checked(change["logger"], change["level"], apply)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValidationError):
        logger.warning("ignored a malformed log level change: %r", data[:200])


def _apply_checked(name: Any, level: Any, apply: Apply) -> None:
    apply(check_name(name), check_level(level))


async def _apply_remembered(client: aioredis.Redis, apply: Apply) -> None:
    remembered = await client.hgetall(LEVELS_KEY)
    for name, level in remembered.items():
        try:
            _apply_checked(_text(name), _text(level), apply)
        except ValidationError:
            logger.warning("ignored a malformed remembered log level: %r=%r", name, level)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _listen_once(url: str, apply: Apply, ready: asyncio.Event | None) -> None:
    client = _client(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(CHANNEL)
        await _apply_remembered(client, apply)
        if ready is not None:
            ready.set()
        async for message in pubsub.listen():
            handle_message(message["data"], apply)
    finally:
        await pubsub.aclose()
        await client.aclose()


async def listen(
    url: str, apply: Apply = apply_level, *, ready: asyncio.Event | None = None
) -> None:
    """Apply the changes other processes publish, until cancelled; reconnect on errors."""
    while True:
        try:
            await _listen_once(url, apply, ready)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("log level listener lost Redis; retrying in %.0fs", RETRY_SECS)
        await asyncio.sleep(RETRY_SECS)


async def start_listener() -> list[asyncio.Task]:
    """Background starter: listen for log level changes when Redis is configured."""
    if not settings.REDIS_URL:
        return []
    task = asyncio.get_running_loop().create_task(listen(settings.REDIS_URL))
    return [task]
