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

import redis.asyncio as aioredis
from django.conf import settings

from events.realtime import control
from kernel.errors import ValidationError

logger = logging.getLogger("sysadmin.loglevels")

ROOT = "root"
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
LOGGER_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,200}")
LEVELS_KEY = "events:sys:logging:levels"
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
    if not isinstance(name, str) or not LOGGER_NAME.fullmatch(name):
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
    """Tell every process, and remember for those that start later; False without Redis."""
    url = url if url is not None else settings.REDIS_URL
    if url:
        client = _client(url)
        try:
            await client.hset(LEVELS_KEY, name, level)
        finally:
            await client.aclose()
    await control.broadcast(control.LOG_LEVEL_CHANGED, logger=name, level=level)
    return bool(url)


def apply_change(message: control.Message, apply: Apply = apply_level) -> None:
    """Control handler: apply a level another process (or this one) set; skip a bad one."""
    try:
        _apply_checked(message.get("logger"), message.get("level"), apply)
    except ValidationError:
        logger.warning("ignored a malformed log level change: %.200r", message)


def _apply_checked(name: Any, level: Any, apply: Apply) -> None:
    apply(check_name(name), check_level(level))


async def apply_remembered(url: str, apply: Apply = apply_level) -> None:
    """Apply the levels set before this process started."""
    client = _client(url)
    try:
        remembered = await client.hgetall(LEVELS_KEY)
    finally:
        await client.aclose()
    for name, level in remembered.items():
        try:
            _apply_checked(_text(name), _text(level), apply)
        except ValidationError:
            logger.warning("ignored a malformed remembered log level: %r=%r", name, level)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def start() -> list[asyncio.Task]:
    """Background starter: the levels set before this process started, when Redis is there."""
    if settings.REDIS_URL:
        try:
            await apply_remembered(settings.REDIS_URL)
        except Exception:
            logger.exception("could not read the remembered log levels")
    return []
