"""The event: what a client may send, and the envelope the service stores.

A client sets ``type``, ``payload``, ``target`` and ``options``; the service
sets the rest. The broker stores an envelope's JSON *without* ``id`` and
``size``: the id is the broker's own (a Redis stream entry id), given at
publish, and ``size`` is the length in bytes of that stored JSON. Readers turn
a stored entry back into the full envelope with :func:`envelope_from_stored`,
which is also how events written to Redis by other services are normalized.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

import orjson

from kernel.errors import EventTooLarge, ValidationError
from kernel.ids import timestamp_ms

TYPE_PATTERN = re.compile(r"[A-Za-z0-9 ._-]{1,128}")
CLIENT_FIELDS = ("type", "payload", "target", "options")
TARGET_KEYS = ("userId", "sessionId")


class Source(TypedDict, total=False):
    workspaceId: str
    userId: str | None
    sessionId: str | None
    correlationId: str | None
    serviceTopic: str | None
    ip: str | None
    host: dict[str, str]


class Envelope(TypedDict):
    id: str
    type: str
    payload: Any
    source: Source
    target: NotRequired[dict[str, str]]
    options: dict[str, Any]
    error: NotRequired[dict[str, Any]]
    cloudevent: NotRequired[dict[str, Any]]
    createdAt: str
    size: int


class ClientEvent(TypedDict):
    type: str
    payload: Any
    target: NotRequired[dict[str, str]]
    options: dict[str, Any]
    # A CloudEvent's own attributes the service keeps (events.cloudevents); never a client's.
    cloudevent: NotRequired[dict[str, Any]]


def now_iso() -> str:
    """Return the current UTC time as ISO 8601 with milliseconds and ``Z``."""
    return iso_from_ms(int(datetime.now(UTC).timestamp() * 1000))


def iso_from_ms(ms: int) -> str:
    """Format epoch milliseconds as the contract's ``createdAt``."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def validate_type(value: Any) -> str:
    """Return a valid event type or raise ValidationError."""
    if not isinstance(value, str) or not TYPE_PATTERN.fullmatch(value):
        raise ValidationError(
            "type must be 1 to 128 characters of letters, digits, space, '.', '_' or '-'",
            details={"field": "type"},
        )
    return value


def _validate_target(value: Any) -> dict[str, str] | None:
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or not set(value) <= set(TARGET_KEYS):
        raise ValidationError(
            "target must be an object with userId and/or sessionId", details={"field": "target"}
        )
    if not value or not all(isinstance(v, str) and v for v in value.values()):
        raise ValidationError(
            "target.userId and target.sessionId must be non-empty strings",
            details={"field": "target"},
        )
    return dict(value)


def _validate_options(value: Any) -> dict[str, Any]:
    if value is None:
        return {"persist": True}
    if not isinstance(value, dict):
        raise ValidationError("options must be an object", details={"field": "options"})
    persist = value.get("persist", True)
    if not isinstance(persist, bool):
        raise ValidationError("options.persist must be true or false", details={"field": "options"})
    return {**value, "persist": persist}


def parse_client_event(raw: Any) -> ClientEvent:
    """Validate what a client sent as one event; ignore what it may not set."""
    if not isinstance(raw, dict):
        raise ValidationError("an event must be a JSON object")
    event: ClientEvent = {
        "type": validate_type(raw.get("type")),
        "payload": raw.get("payload"),
        "options": _validate_options(raw.get("options")),
    }
    target = _validate_target(raw.get("target"))
    if target:
        event["target"] = target
    return event


def parse_batch(raw: Any, *, max_batch: int) -> list[ClientEvent]:
    """Validate an emit body ``{"events": [...]}``: all or nothing."""
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), list):
        raise ValidationError('the body must be {"events": [event, ...]}')
    items = raw["events"]
    if not 1 <= len(items) <= max_batch:
        raise ValidationError(
            f"send 1 to {max_batch} events per request, not {len(items)}",
            details={"field": "events", "count": len(items)},
        )
    return parse_each(items, parse_client_event)


def parse_each(items: list[Any], parse: Callable[[Any], ClientEvent]) -> list[ClientEvent]:
    """Parse every item of a batch: the first refused one refuses all, its index in details."""
    events = []
    for index, item in enumerate(items):
        try:
            events.append(parse(item))
        except ValidationError as exc:
            exc.details = {"index": index, **(exc.details or {})}
            raise
    return events


def stored_form(event: ClientEvent, source: Source, *, error: dict | None = None) -> dict:
    """Return the envelope as the broker stores it (no ``id``, no ``size``)."""
    stored: dict[str, Any] = {"type": event["type"], "payload": event.get("payload")}
    stored["source"] = source
    if event.get("target"):
        stored["target"] = event["target"]
    stored["options"] = event.get("options") or {"persist": True}
    if error:
        stored["error"] = error
    if event.get("cloudevent"):
        stored["cloudevent"] = event["cloudevent"]
    stored["createdAt"] = now_iso()
    return stored


def encode_stored(stored: dict, *, max_bytes: int, index: int = 0) -> bytes:
    """Serialize a stored envelope once, refusing it if it is too large."""
    try:
        data = orjson.dumps(stored)
    except TypeError as exc:
        raise ValidationError(f"payload is not JSON: {exc}", details={"index": index}) from None
    if len(data) > max_bytes:
        raise EventTooLarge(
            f"the event is {len(data)} bytes; the limit is {max_bytes}",
            details={"index": index, "size": len(data), "limit": max_bytes},
        )
    return data


def envelope_from_stored(event_id: str, data: bytes | str, workspace_id: str) -> Envelope | None:
    """Rebuild the full envelope from a broker entry; None if it is not an event.

    Entries written by other services may omit ``createdAt``, ``options`` or
    parts of ``source``; they get the same defaults as the API gives.
    """
    try:
        stored = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(stored, dict) or not _is_valid_type(stored.get("type")):
        return None
    raw_source = stored.get("source")
    source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
    source["workspaceId"] = workspace_id
    envelope: dict[str, Any] = {"id": event_id, **stored, "source": source}
    envelope["id"] = event_id
    envelope.setdefault("payload", None)
    if not isinstance(envelope.get("options"), dict):
        envelope["options"] = {"persist": True}
    if not isinstance(envelope.get("createdAt"), str):
        envelope["createdAt"] = iso_from_ms(timestamp_ms(event_id))
    envelope["size"] = len(data)
    return envelope  # type: ignore[return-value]


def _is_valid_type(value: Any) -> bool:
    return isinstance(value, str) and TYPE_PATTERN.fullmatch(value) is not None


def is_persistent(envelope: Mapping[str, Any]) -> bool:
    """Whether the history keeps this event (``options.persist`` is not false)."""
    options = envelope.get("options")
    return not (isinstance(options, dict) and options.get("persist") is False)
