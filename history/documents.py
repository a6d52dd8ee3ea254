"""What both histories index besides the envelope itself.

Full text and field filters must find exactly what :meth:`Filters.matches`
finds live, so the words and the leaf values are computed here, once, in
Python, with the filters' own rules (``events.filters.event_words`` and
``text_of``): leaf values by dotted path, lists searched element-wise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from events.filters import FIELD_ROOTS, event_words, text_of

__all__ = ["envelope_fields", "event_words", "is_targeted", "leaf_fields", "target_value"]


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
    for root in FIELD_ROOTS:
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
