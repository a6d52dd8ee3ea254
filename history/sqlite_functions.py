"""The SQLite history's own SQL functions, in Python, built on :class:`events.glob.Glob`.

``events_glob(pattern, value)`` matches a type; ``events_field(fields, path,
patterns)`` matches a field filter against the ``fields`` column (one escaped
``path=value`` line per leaf; ``patterns`` a JSON list, any of which may
match). Neither builds a regular expression from what a client sent, so a
search costs time linear in what it reads, as live matching does. They are
registered on every new SQLite connection (``HistoryConfig.ready``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import orjson
from django.db.models import BooleanField, Func, Value

from events.glob import Glob

ESCAPED = re.compile(r"\\(.)", re.DOTALL)  # fixed: never built from input


def escape_line(text: str) -> str:
    """Escape a path or value so that it stays on one line of the ``fields`` column."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _unescaped(match: re.Match[str]) -> str:
    return "\n" if match.group(1) == "n" else match.group(1)


def unescape_line(text: str) -> str:
    """The text that :func:`escape_line` escaped."""
    return ESCAPED.sub(_unescaped, text) if "\\" in text else text


def column_values(fields: str, path: str) -> Iterator[str]:
    """Every value the ``fields`` column holds at ``path``."""
    needle = f"\n{escape_line(path)}="
    start = fields.find(needle)
    while start >= 0:
        begin = start + len(needle)
        end = fields.find("\n", begin)
        yield unescape_line(fields[begin:end])
        start = fields.find(needle, end)


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> Glob:
    return Glob(pattern)


@lru_cache(maxsize=256)
def _globs(patterns: str) -> tuple[Glob, ...]:
    return tuple(Glob(p) for p in orjson.loads(patterns))


def sql_glob(pattern: str, value: str | None) -> bool:
    """``events_glob``: whether a column's value matches a pattern."""
    return value is not None and _glob(pattern).matches(value)


def sql_field(fields: str | None, path: str, patterns: str) -> bool:
    """``events_field``: whether any value at ``path`` matches any of the patterns."""
    if not fields:
        return False
    globs = _globs(patterns)
    return any(g.matches(value) for value in column_values(fields, path) for g in globs)


def register_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created``: give a new SQLite connection the history's functions."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.create_function("events_glob", 2, sql_glob, deterministic=True)
    raw.create_function("events_field", 3, sql_field, deterministic=True)


class GlobMatches(Func):
    """``events_glob(pattern, column)`` as a filter expression."""

    function = "events_glob"
    output_field = BooleanField()

    def __init__(self, column: str, pattern: str) -> None:
        super().__init__(Value(pattern), column)


class FieldMatches(Func):
    """``events_field(fields, path, patterns)`` as a filter expression."""

    function = "events_field"
    output_field = BooleanField()

    def __init__(self, path: str, patterns: tuple[str, ...]) -> None:
        super().__init__("fields", Value(path), Value(orjson.dumps(list(patterns)).decode()))
