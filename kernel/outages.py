"""Dependencies that do not answer: one stack trace per outage, one line per failure after it.

A Redis, Elasticsearch or PostgreSQL that does not answer is not a bug of the request
that met it: the caller gets 503 ``ServiceUnavailable`` (``events.realtime.failures``), and
the log gets the first failure with its full stack trace, then one line per failure (with
the correlation id the log adds) until the dependency answers again, then one
``recovered`` line. Whoever sees the dependency answer (a publish, a feed's read,
the archiver, the health check, a new database connection) calls :func:`answered`; hooks
registered with :func:`when_recovered` run then (the error events kept during a broker outage).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from psycopg import OperationalError as PostgresDown
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kernel.errors import DependencyDown

logger = logging.getLogger("events.outages")

BROKER = "broker"
HISTORY = "history"
DATABASE = "database"
CAUSE_DEPTH = 5
REASON_CHARS = 200
# The Redis client's own "no answer" errors: the broker's, wherever they surface.
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


@dataclass
class Outage:
    """A dependency that failed and has not answered since."""

    since: float
    failures: int = 1


_outages: dict[str, Outage] = {}
_recovery_hooks: dict[str, list[Callable[[], None]]] = {}


def dependency_of(exc: BaseException | None) -> str | None:
    """The dependency that did not answer, if that is what ``exc`` (or its cause) says."""
    for _ in range(CAUSE_DEPTH):
        if exc is None:
            return None
        if isinstance(exc, DependencyDown):
            return exc.dependency
        if isinstance(exc, _REDIS_DOWN):
            return BROKER
        if isinstance(exc, PostgresDown):  # refused, lost, timed out (psycopg 3, under the ORM)
            return DATABASE
        exc = exc.__cause__ or exc.__context__
    return None


def is_down(dependency: str) -> bool:
    """True from a failure of ``dependency`` until it answers again."""
    return dependency in _outages


def failed(dependency: str, exc: BaseException, where: str) -> None:
    """Log a failure: the first of an outage with its stack, the others as one line."""
    outage = _outages.get(dependency)
    if outage is None:
        _outages[dependency] = Outage(since=time.monotonic())
        logger.error("%s unavailable in %s", dependency, where, exc_info=exc)
        return
    outage.failures += 1
    reason = f"{type(exc).__name__}: {exc}"[:REASON_CHARS]
    logger.warning(
        "%s still unavailable in %s (failure %d of this outage): %s",
        dependency,
        where,
        outage.failures,
        reason,
    )


def answered(dependency: str) -> None:
    """The dependency answered: end its outage (one ``recovered`` line) and run the hooks."""
    outage = _outages.pop(dependency, None)
    if outage is None:
        return
    logger.warning(
        "%s recovered after %d failures in %.1fs",
        dependency,
        outage.failures,
        time.monotonic() - outage.since,
    )
    for hook in _recovery_hooks.get(dependency, []):
        hook()


def when_recovered(dependency: str, hook: Callable[[], None]) -> None:
    """Call ``hook`` each time ``dependency`` answers again after an outage."""
    _recovery_hooks.setdefault(dependency, []).append(hook)


def forget() -> None:
    """Forget every outage (tests)."""
    _outages.clear()
