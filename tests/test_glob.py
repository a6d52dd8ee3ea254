"""The glob matcher (events/glob.py): right, and linear in the length of the value.

A property-based test compares :class:`Glob` with a simple reference (the
textbook recursive matcher, memoized) on random patterns and values of a small
alphabet, where stars and repeated letters make backtracking matchers slow,
and bounds the work of each match: the windows ``str.find`` is given never add
up to more than the value, and there is at most one ``find`` per part.
"""

from __future__ import annotations

from functools import cache

from hypothesis import example, given, settings
from hypothesis import strategies as st

from events.glob import Glob

PATHOLOGICAL = "*a*a*a*a*a*!"  # issue 11: seconds as a regular expression on 128 characters


def reference(pattern: str, value: str) -> bool:
    """Whether ``value`` matches ``pattern`` (``*`` any run), by the definition."""

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(value)
        if pattern[i] == "*":
            return match(i + 1, j) or (j < len(value) and match(i, j + 1))
        return j < len(value) and pattern[i] == value[j] and match(i + 1, j + 1)

    return match(0, 0)


class CountingGlob(Glob):
    """A Glob that counts its ``find`` calls and the characters of their windows."""

    __slots__ = ("calls", "scanned")

    def __init__(self, pattern: str) -> None:
        super().__init__(pattern)
        self.calls = 0
        self.scanned = 0

    def find(self, value: str, part: str, start: int, end: int) -> int:  # type: ignore[override]
        found = value.find(part, start, end)
        self.calls += 1
        self.scanned += (found + len(part) - start) if found >= 0 else (end - start)
        return found


patterns = st.text(alphabet="ab*", max_size=12)
values = st.text(alphabet="ab", max_size=40)


@settings(max_examples=500, deadline=None)
@given(pattern=patterns, value=values)
@example(pattern="*a*a*a*a*", value="a" * 40)
@example(pattern="a*b*a", value="aba")
@example(pattern="ab*ba", value="aba")
@example(pattern="**", value="")
def test_it_matches_as_the_reference_does_with_bounded_work(pattern, value):
    glob = CountingGlob(pattern)
    assert glob.matches(value) is reference(pattern, value)
    assert glob.calls <= max(0, pattern.count("*") - 1)
    assert glob.scanned <= len(value)


def test_the_issues_pattern_on_a_long_type_reads_the_type_about_once():
    glob = CountingGlob(PATHOLOGICAL)
    assert glob.matches("a" * 128) is False
    assert glob.calls == 0  # the suffix "!" is missing: nothing more to look at
    worst = CountingGlob("*a" * 1000 + "*")  # a thousand stars, were they allowed
    assert worst.matches("a" * 128) is False
    assert worst.calls == 129  # stops at the first part it cannot find
    assert worst.scanned <= 128


def test_a_match_goes_forward_only():
    glob = CountingGlob("*b*b*b*b*")
    assert glob.matches("a" * 100 + "b" * 4)
    assert glob.calls == 4
    assert glob.scanned == 104
