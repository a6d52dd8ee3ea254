"""Glob patterns where ``*`` matches any run of characters, matched in linear time.

No regular expression is ever built from what a client sends: a pattern is
split on ``*`` and its parts are found in order (the first part as a prefix,
the last as a suffix, the middle ones leftmost first with ``str.find``). Taking
the leftmost place of each middle part is always right for ``*``-only globs, so
the match never goes back: each character of the value is looked at a bounded
number of times, whatever the pattern. Live matching and the SQLite history's
SQL functions use this class; Elasticsearch gets ``wildcard`` queries.
"""

from __future__ import annotations

STAR = "*"


class Glob:
    """One pattern; :meth:`matches` answers whether a whole value matches it."""

    __slots__ = ("exact", "first", "last", "middle", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        parts = pattern.split(STAR)
        self.exact = len(parts) == 1
        self.first, self.last = parts[0], parts[-1]
        self.middle = tuple(part for part in parts[1:-1] if part)

    def __repr__(self) -> str:
        return f"Glob({self.pattern!r})"

    def matches(self, value: str) -> bool:
        """Whether ``value`` matches the whole pattern."""
        if self.exact:
            return value == self.first
        end = len(value) - len(self.last)
        if end < len(self.first) or not value.startswith(self.first):
            return False
        if not value.endswith(self.last):
            return False
        return self._middle_fits(value, len(self.first), end)

    def _middle_fits(self, value: str, start: int, end: int) -> bool:
        """Whether the middle parts come in order between ``start`` and ``end``."""
        for part in self.middle:
            found = self.find(value, part, start, end)
            if found < 0:
                return False
            start = found + len(part)
        return True

    @staticmethod
    def find(value: str, part: str, start: int, end: int) -> int:
        """Where ``part`` first occurs in ``value[start:end]`` (-1 when it does not)."""
        return value.find(part, start, end)
