"""Filters: which events a subscription, a long poll or a search wants.

The same keys serve the query string, the ``subscribe`` frame and search:
``types`` (comma lists, ``prefix*`` / ``*suffix`` wildcards), ``text`` (every
word must appear, case-insensitive, in the type or a string of the payload),
and any field by dotted path (``payload.orderId=42``); a repeated key or a
list means OR, different keys mean AND. :class:`Filters` is plain data that
the history turns into queries and that :meth:`Filters.matches` applies live.

Every filter's cost is bounded before it is accepted (:data:`LIMITS`): a
filter over a limit is a ValidationError naming it, and matching is linear in
the length of the value (:class:`events.glob.Glob`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from events.glob import Glob
from kernel.errors import ValidationError

FIELD_ROOTS = ("id", "type", "payload", "source", "target", "options", "error", "createdAt")
WORD = re.compile(r"\w+")
# What one filter may hold; each name is the ``limit`` of the error's details.
MAX_STARS = 4  # ``*`` per pattern
MAX_VALUE_CHARS = 256  # characters per value (each type of a comma list)
MAX_VALUES = 50  # values per key (types after splitting the comma lists)
MAX_FIELD_KEYS = 10  # field keys (``payload.x``, ``source.userId``, ...) per filter
MAX_TEXT_WORDS = 16  # words over every ``text`` value
MAX_PATH_PARTS = 8  # parts of a field's dotted path
MAX_PATH_CHARS = 256  # characters of a field's dotted path
LIMITS = {
    "stars": MAX_STARS,
    "valueLength": MAX_VALUE_CHARS,
    "values": MAX_VALUES,
    "fieldKeys": MAX_FIELD_KEYS,
    "textWords": MAX_TEXT_WORDS,
    "pathParts": MAX_PATH_PARTS,
    "pathLength": MAX_PATH_CHARS,
}
LIMIT_WORDING = {
    "stars": "'*' per pattern",
    "valueLength": "characters per value",
    "values": "values",
    "fieldKeys": "field filters",
    "textWords": "words of text",
    "pathParts": "parts in a field path",
    "pathLength": "characters in a field path",
}


def words(text: str) -> list[str]:
    """Split text into lower-case words, as full-text search does."""
    return WORD.findall(text.lower())


def over_limit(key: str, limit: str) -> ValidationError:
    """The error of a filter over one of :data:`LIMITS`, naming it."""
    most = LIMITS[limit]
    return ValidationError(
        f"filter {key[:40]!r}: at most {most} {LIMIT_WORDING[limit]} (limit {limit})",
        details={"field": key[:MAX_PATH_CHARS], "limit": limit, "max": most},
    )


def check_count(key: str, limit: str, count: int) -> None:
    """Refuse ``count`` things where at most ``LIMITS[limit]`` are allowed."""
    if count > LIMITS[limit]:
        raise over_limit(key, limit)


def check_pattern(key: str, pattern: str) -> str:
    """One pattern of a filter within the ``*`` limit; returned as is."""
    check_count(key, "stars", pattern.count("*"))
    return pattern


def _as_list(key: str, value: Any) -> list[str]:
    values = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(v, str | int | float | bool) for v in values):
        raise ValidationError(
            f"filter {key[:40]!r} takes a string or a list of strings",
            details={"field": key[:MAX_PATH_CHARS]},
        )
    check_count(key, "values", len(values))
    texts = [text_of(v) for v in values]
    for text in texts:
        check_count(key, "valueLength", len(text))
    return texts


def text_of(value: Any) -> str:
    """A leaf value as filters compare it (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _lookup(document: Any, path: list[str]) -> list[Any]:
    """Return every value at a dotted path (lists are searched element-wise)."""
    current = [document]
    for part in path:
        found = []
        for item in current:
            if isinstance(item, dict) and part in item:
                value = item[part]
                found.extend(value if isinstance(value, list) else [value])
        current = found
    return current


def payload_strings(value: Any) -> Iterable[str]:
    """Every string inside a payload, depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from payload_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from payload_strings(item)


def event_words(event: Mapping[str, Any]) -> list[str]:
    """The words full text finds an event by: of its type and every payload string."""
    found = words(str(event.get("type", "")))
    for text in payload_strings(event.get("payload")):
        found.extend(words(text))
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Filters:
    """What a consumer wants; empty filters match every event."""

    types: tuple[str, ...] = ()
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()
    texts: tuple[str, ...] = ()

    @cached_property
    def _type_patterns(self) -> list[Glob]:
        return [Glob(t) for t in self.types]

    @cached_property
    def _field_patterns(self) -> list[tuple[list[str], list[Glob]]]:
        return [(path.split("."), [Glob(v) for v in vals]) for path, vals in self.fields]

    @cached_property
    def _text_words(self) -> list[set[str]]:
        return [set(words(t)) for t in self.texts]

    def describe(self) -> dict[str, Any]:
        """The filters as the audit's ``events.subscribed`` payload shows them."""
        described: dict[str, Any] = dict(self.fields)
        if self.types:
            described["types"] = list(self.types)
        if self.texts:
            described["text"] = list(self.texts)
        return described

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether an envelope passes every filter."""
        return (
            self._matches_type(event)
            and all(
                _field_matches(event, path, patterns) for path, patterns in self._field_patterns
            )
            and (not self.texts or self._matches_text(event))
        )

    def _matches_type(self, event: Mapping[str, Any]) -> bool:
        event_type = event.get("type", "")
        return not self.types or any(p.matches(event_type) for p in self._type_patterns)

    def _matches_text(self, event: Mapping[str, Any]) -> bool:
        found = set(event_words(event))
        return any(wanted <= found for wanted in self._text_words)


def parse_filters(params: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> Filters:
    """Build Filters from query parameters or a ``filters`` object.

    ``params`` maps each key to a string or a list of strings; keys in
    ``ignore`` (transport parameters such as ``cursor``) are skipped, and any
    other unknown key is a ValidationError.
    """
    if not isinstance(params, Mapping):
        raise ValidationError("filters must be an object")
    skipped = set(ignore)
    collected: dict[str, list[str]] = {"types": [], "text": []}
    for key, raw in params.items():
        if key not in skipped:
            _collect(collected, key, _as_list(key, raw))
    types, texts = collected.pop("types"), collected.pop("text")
    return Filters(
        types=_types(types),
        fields=tuple((k, tuple(check_pattern(k, p) for p in v)) for k, v in collected.items()),
        texts=_texts(texts),
    )


def _types(values: list[str]) -> tuple[str, ...]:
    """The types of the ``types`` values (comma lists split), each within its limits."""
    types = [t.strip() for v in values for t in v.split(",") if t.strip()]
    check_count("types", "values", len(types))
    return tuple(check_pattern("types", t) for t in types)


def _texts(values: list[str]) -> tuple[str, ...]:
    """The ``text`` values that hold words, at most MAX_TEXT_WORDS words over all of them."""
    check_count("text", "textWords", sum(len(words(v)) for v in values))
    return tuple(v for v in values if words(v))


def _collect(collected: dict[str, list[str]], key: str, values: list[str]) -> None:
    if key not in collected:
        _check_field_path(key)
        check_count(key, "fieldKeys", len(collected) - 1)  # "types" and "text" are there
    found = collected.setdefault(key, [])
    found.extend(values)
    check_count(key, "values", len(found))


def _check_field_path(key: str) -> None:
    """A dotted path under one of FIELD_ROOTS, within the path limits."""
    check_count(key, "pathLength", len(key))
    parts = key.split(".")
    check_count(key, "pathParts", len(parts))
    if parts[0] not in FIELD_ROOTS or not all(parts):
        raise ValidationError(f"unknown filter {key[:40]!r}", details={"field": key})


def _field_matches(event: Mapping[str, Any], path: list[str], patterns: list[Glob]) -> bool:
    values = [text_of(v) for v in _lookup(event, path) if not isinstance(v, dict | list)]
    return any(p.matches(v) for p in patterns for v in values)


def query_params(query: Any) -> dict[str, list[str]]:
    """Turn a Django QueryDict (or a parsed query string) into key -> list of values."""
    if hasattr(query, "lists"):
        return {key: list(values) for key, values in query.lists()}
    return {key: list(values) for key, values in query.items()}
