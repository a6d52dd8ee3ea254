"""What both histories index besides the envelope itself.

Full text and field filters must find exactly what :meth:`Filters.matches`
finds live, so the words and the leaf values are computed here, once, in
Python, with the same rules: words of the type and of every string of the
payload (``events.filters.words``), and leaf values by dotted path, lists
searched element-wise, written as text the way filters compare them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from events.filters import words

INDEXED_ROOTS = ("id", "type", "payload", "source", "target", "options", "error", "createdAt")


def payload_strings(value: Any) -> Iterator[str]:
    """Every string inside a payload, depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from payload_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from payload_strings(item)


def event_words(envelope: Mapping[str, Any]) -> list[str]:
    """The lower-case words full-text search finds the event by (type and payload)."""
    found = words(str(envelope.get("type", "")))
    for text in payload_strings(envelope.get("payload")):
        found.extend(words(text))
    return list(dict.fromkeys(found))


def text_of(value: Any) -> str:
    """A leaf value as filters compare it (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def leaf_fields(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every ``(dotted.path, text)`` leaf of a JSON value; list items share their path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_fields(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from leaf_fields(item, path)
    elif path:
        yield path, text_of(value)


def envelope_fields(envelope: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The leaves of every field a filter may name."""
    for root in INDEXED_ROOTS:
        if root in envelope:
            yield from leaf_fields(envelope[root], root)


def is_targeted(envelope: Mapping[str, Any]) -> bool:
    """Whether the read rule restricts this event (it has a non-empty ``target``)."""
    return bool(envelope.get("target"))


def target_value(envelope: Mapping[str, Any], key: str) -> str | None:
    """``target.userId`` or ``target.sessionId`` when it is a non-empty string."""
    target = envelope.get("target")
    value = target.get(key) if isinstance(target, dict) else None
    return value if isinstance(value, str) and value else None
