"""Filters: which events a subscription, a long poll or a search wants.

The same keys serve the query string, the ``subscribe`` frame and search:
``types`` (comma lists, ``prefix*`` / ``*suffix`` wildcards), ``text`` (every
word must appear, case-insensitive, in the type or a string of the payload),
and any field by dotted path (``payload.orderId=42``); a repeated key or a
list means OR, different keys mean AND. :class:`Filters` is plain data that
the history turns into queries and that :meth:`Filters.matches` applies live.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from events.errors import ValidationError

FIELD_ROOTS = ("id", "type", "payload", "source", "target", "options", "error", "createdAt")
WORD = re.compile(r"\w+")
MAX_VALUES = 100


def words(text: str) -> list[str]:
    """Split text into lower-case words, as full-text search does."""
    return WORD.findall(text.lower())


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a pattern where ``*`` matches any run of characters."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def _as_list(key: str, value: Any) -> list[str]:
    values = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(v, str | int | float | bool) for v in values):
        raise ValidationError(
            f"filter {key!r} takes a string or a list of strings", details={"field": key}
        )
    if len(values) > MAX_VALUES:
        raise ValidationError(f"filter {key!r} takes at most {MAX_VALUES} values")
    return [text_of(v) for v in values]


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
    def _type_patterns(self) -> list[re.Pattern[str]]:
        return [glob_regex(t) for t in self.types]

    @cached_property
    def _field_patterns(self) -> list[tuple[list[str], list[re.Pattern[str]]]]:
        return [(path.split("."), [glob_regex(v) for v in vals]) for path, vals in self.fields]

    @cached_property
    def _text_words(self) -> list[set[str]]:
        return [set(words(t)) for t in self.texts]

    def is_empty(self) -> bool:
        """True when the filters let every event through."""
        return not (self.types or self.fields or self.texts)

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
        return not self.types or any(p.fullmatch(event_type) for p in self._type_patterns)

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
        types=tuple(t.strip() for v in types for t in v.split(",") if t.strip()),
        fields=tuple((k, tuple(v)) for k, v in collected.items()),
        texts=tuple(v for v in texts if words(v)),
    )


def _collect(collected: dict[str, list[str]], key: str, values: list[str]) -> None:
    if key not in ("types", "text") and not _is_field_path(key):
        raise ValidationError(f"unknown filter {key!r}", details={"field": key})
    collected.setdefault(key, []).extend(values)


def _is_field_path(key: str) -> bool:
    parts = key.split(".")
    return parts[0] in FIELD_ROOTS and all(parts)


def _field_matches(event: Mapping[str, Any], path: list[str], patterns: list[re.Pattern]) -> bool:
    values = [text_of(v) for v in _lookup(event, path) if not isinstance(v, dict | list)]
    return any(p.fullmatch(v) for p in patterns for v in values)


def query_params(query: Any) -> dict[str, list[str]]:
    """Turn a Django QueryDict (or a parsed query string) into key -> list of values."""
    if hasattr(query, "lists"):
        return {key: list(values) for key, values in query.lists()}
    return {key: list(values) for key, values in query.items()}
