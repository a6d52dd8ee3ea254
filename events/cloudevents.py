"""CloudEvents 1.0: the service's event as a CloudEvent, and a CloudEvent as a client event.

Both directions of the mapping of docs/CLOUDEVENTS.md, plain Python over plain values:

- in: :func:`parse_structured` (one event, ``application/cloudevents+json``),
  :func:`parse_structured_batch` (``application/cloudevents-batch+json``) and
  :func:`parse_binary` (``ce-*`` headers, the body is ``data``) validate what a client sent
  and return client events; what the service cannot keep as it is (the CloudEvent's own
  ``id``, ``source``, ``time``, ``subject``, ``dataschema``, ``datacontenttype`` and the
  client's extensions) goes into the event's ``cloudevent`` member, so it comes back out;
- out: :func:`to_cloudevent` builds the structured form of an envelope, the service's own
  fields as lower-case extension attributes; :func:`encode_cloudevent` is its JSON.

Every attribute is bounded; a refusal is a ValidationError whose ``details`` name the
attribute. The size of the whole event is bounded where every event's is (``encode_stored``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import orjson

from events.event import ClientEvent, Envelope, parse_each, validate_type
from kernel.errors import ValidationError

SPECVERSION = "1.0"
MEDIA_TYPE = "application/cloudevents+json"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
FORMAT = "cloudevents"
HEADER_PREFIX = "ce-"
MAX_ATTRIBUTE_CHARS = 2048
MAX_EXTENSIONS = 32
MAX_EXTENSION_NAME = 64
INT32 = (-(2**31), 2**31 - 1)
REQUIRED = ("id", "source", "type")
# The optional attributes the service keeps as they were sent.
KEPT = ("time", "subject", "dataschema", "datacontenttype")
CONTEXT = frozenset(("specversion", *REQUIRED, *KEPT, "data", "data_base64"))
EXTENSION_NAME = re.compile(rf"[a-z0-9]{{1,{MAX_EXTENSION_NAME}}}")
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
JSON_MEDIA = re.compile(r"(application|text)/([a-z0-9.\-]+\+)?json", re.IGNORECASE)
VISIBLE = re.compile(r"[^\x00-\x1f\x7f]+")
# The service's own fields as extension attributes: each one's path in the envelope.
SERVICE_PATHS = {
    "eventid": ("id",),
    "workspace": ("source", "workspaceId"),
    "userid": ("source", "userId"),
    "sessionid": ("source", "sessionId"),
    "correlationid": ("source", "correlationId"),
    "servicetopic": ("source", "serviceTopic"),
    "ip": ("source", "ip"),
    "hostservice": ("source", "host", "service"),
    "hostreplica": ("source", "host", "replica"),
    "createdat": ("createdAt",),
    "size": ("size",),
    "targetuserid": ("target", "userId"),
    "targetsessionid": ("target", "sessionId"),
    "error": ("error", "error"),
    "errormessage": ("error", "message"),
    "errorlevel": ("error", "level"),
}
# Extensions that set the client's own fields: target and options.persist.
TARGET_EXTENSIONS = {"targetuserid": "userId", "targetsessionid": "sessionId"}
PERSIST = "persist"
# Extensions the service sets itself: a client's are ignored, as a client's ``source`` is.
SERVICE_EXTENSIONS = frozenset(SERVICE_PATHS) - set(TARGET_EXTENSIONS)


def refuse(attribute: str, message: str) -> ValidationError:
    """The 400 of an invalid CloudEvent, naming the attribute."""
    return ValidationError(f"CloudEvent {attribute}: {message}", details={"attribute": attribute})


def _text(raw: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise refuse(name, "is required")
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_ATTRIBUTE_CHARS:
        raise refuse(name, f"must be a string of 1 to {MAX_ATTRIBUTE_CHARS} characters")
    if not VISIBLE.fullmatch(value):
        raise refuse(name, "must not hold control characters")
    return value


def _check_specversion(raw: Mapping[str, Any]) -> None:
    value = raw.get("specversion")
    if value is None:
        raise refuse("specversion", "is required")
    if value != SPECVERSION:
        raise refuse("specversion", f'must be "{SPECVERSION}"')


def _check_time(value: str | None) -> None:
    if value is None:
        return
    try:
        valid = RFC3339.fullmatch(value) is not None and bool(datetime.fromisoformat(value))
    except ValueError:
        valid = False
    if not valid:
        raise refuse("time", "must be an RFC 3339 timestamp such as 2026-12-04T20:00:00Z")


def _extension_value(name: str, value: Any) -> str | int | bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and INT32[0] <= value <= INT32[1]:
        return value
    if isinstance(value, str) and len(value) <= MAX_ATTRIBUTE_CHARS and VISIBLE.fullmatch(value):
        return value
    raise refuse(
        name,
        f"an extension is a string of at most {MAX_ATTRIBUTE_CHARS} characters, "
        "a 32-bit integer or a boolean",
    )


def _extensions(raw: Mapping[str, Any]) -> dict[str, str | int | bool]:
    names = [name for name in raw if name not in CONTEXT]
    if len(names) > MAX_EXTENSIONS:
        raise refuse(names[MAX_EXTENSIONS], f"at most {MAX_EXTENSIONS} extension attributes")
    extensions: dict[str, str | int | bool] = {}
    for name in names:
        if not isinstance(name, str) or not EXTENSION_NAME.fullmatch(name):
            shown = str(name)[:MAX_EXTENSION_NAME]
            raise refuse(shown, f"extension names are 1 to {MAX_EXTENSION_NAME} of a-z and 0-9")
        if raw[name] is not None and name not in SERVICE_EXTENSIONS:
            extensions[name] = _extension_value(name, raw[name])
    return extensions


def _persist(extensions: dict[str, str | int | bool]) -> bool:
    value = extensions.pop(PERSIST, True)
    if isinstance(value, str):  # binary mode: every attribute is a header's text
        value = {"true": True, "false": False}.get(value.lower(), value)
    if isinstance(value, bool):
        return value
    raise refuse(PERSIST, "must be true or false")


def _client_fields(event: ClientEvent, extensions: dict[str, str | int | bool]) -> None:
    """Move the extensions that are the client's own fields (target, persist) into the event."""
    event["options"] = {"persist": _persist(extensions)}
    target = {}
    for name, key in TARGET_EXTENSIONS.items():
        value = extensions.pop(name, None)
        if value is not None:
            if not isinstance(value, str):
                raise refuse(name, "must be a string")
            target[key] = value
    if target:
        event["target"] = target


def _data(raw: Mapping[str, Any]) -> tuple[Any, bool]:
    """The payload and whether it is base64 (``data_base64``)."""
    encoded = raw.get("data_base64")
    if encoded is None:
        return raw.get("data"), False
    if raw.get("data") is not None:
        raise refuse("data_base64", "an event holds data or data_base64, not both")
    if not isinstance(encoded, str):
        raise refuse("data_base64", "must be a base64 string")
    try:
        base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise refuse("data_base64", "is not base64") from None
    return encoded, True


def parse_structured(raw: Any) -> ClientEvent:
    """Validate one structured CloudEvent (a JSON object); return it as a client event."""
    if not isinstance(raw, dict):
        raise ValidationError("a CloudEvent must be a JSON object", details={"attribute": None})
    _check_specversion(raw)
    kept: dict[str, Any] = {name: _text(raw, name, required=True) for name in ("id", "source")}
    try:
        event_type = validate_type(raw.get("type"))
    except ValidationError:
        raise refuse("type", "must be 1 to 128 of letters, digits, space, '.', '_', '-'") from None
    for name in KEPT:
        value = _text(raw, name)
        if value is not None:
            kept[name] = value
    _check_time(kept.get("time"))
    payload, is_base64 = _data(raw)
    if is_base64:
        kept["base64"] = True
    extensions = _extensions(raw)
    event: ClientEvent = {"type": event_type, "payload": payload, "options": {}}
    _client_fields(event, extensions)
    if extensions:
        kept["extensions"] = extensions
    event["cloudevent"] = kept
    return event


def parse_structured_batch(raw: Any, *, max_batch: int) -> list[ClientEvent]:
    """Validate a batch (a JSON array of 1 to ``max_batch`` CloudEvents): all or nothing."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= max_batch:
        count = len(raw) if isinstance(raw, list) else None
        raise ValidationError(
            f"a CloudEvents batch is a JSON array of 1 to {max_batch} events",
            details={"attribute": None, "count": count},
        )
    return parse_each(raw, parse_structured)


def binary_attributes(headers: Iterable[tuple[str, str]]) -> dict[str, str] | None:
    """The attributes of a binary-mode request (its ``ce-*`` headers); None if it has none."""
    found = {
        name.lower()[len(HEADER_PREFIX) :]: unquote(value)
        for name, value in headers
        if name.lower().startswith(HEADER_PREFIX)
    }
    return found or None


def _binary_data(body: bytes, content_type: str | None) -> tuple[Any, bool]:
    if not body:
        return None, False
    media = (content_type or "application/json").partition(";")[0].strip()
    if JSON_MEDIA.fullmatch(media):
        try:
            return orjson.loads(body), False
        except orjson.JSONDecodeError as exc:
            raise refuse("data", f"is not JSON, as datacontenttype says: {exc}") from None
    if media.lower().startswith("text/"):
        try:
            return body.decode(), False
        except UnicodeDecodeError:
            raise refuse("data", "text data must be UTF-8") from None
    return base64.b64encode(body).decode(), True


def parse_binary(attributes: dict[str, str], body: bytes, content_type: str | None) -> ClientEvent:
    """Validate a binary-mode CloudEvent: attributes from headers, ``data`` the body."""
    raw: dict[str, Any] = dict(attributes)
    raw.pop("datacontenttype", None)
    raw.pop("data", None)
    raw.pop("data_base64", None)
    if content_type:
        raw["datacontenttype"] = content_type
    payload, is_base64 = _binary_data(body, content_type)
    raw["data_base64" if is_base64 else "data"] = payload
    return parse_structured(raw)


def _at(envelope: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = envelope
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _service_extensions(envelope: Envelope) -> dict[str, Any]:
    values = {name: _at(envelope, path) for name, path in SERVICE_PATHS.items()}
    extensions = {name: v for name, v in values.items() if isinstance(v, (str, int)) and v != ""}
    extensions[PERSIST] = _at(envelope, ("options", PERSIST)) is not False
    return extensions


def _kept(envelope: Envelope) -> Mapping[str, Any]:
    kept = envelope.get("cloudevent")
    return kept if isinstance(kept, dict) else {}


def _context(envelope: Envelope, kept: Mapping[str, Any]) -> dict[str, Any]:
    """The context attributes: what the CloudEvent came with, else the service's own."""
    workspace_id = _at(envelope, ("source", "workspaceId"))
    event = {
        "specversion": SPECVERSION,
        "id": kept.get("id") or envelope["id"],
        "source": kept.get("source") or f"/v2/workspaces/{workspace_id}",
        "type": envelope["type"],
        "time": kept.get("time") or envelope.get("createdAt"),
        "datacontenttype": kept.get("datacontenttype") or "application/json",
    }
    event.update({name: kept[name] for name in ("subject", "dataschema") if kept.get(name)})
    return event


def to_cloudevent(envelope: Envelope) -> dict[str, Any]:
    """The envelope as a structured CloudEvent (a JSON object): docs/CLOUDEVENTS.md's mapping."""
    kept = _kept(envelope)
    event = _context(envelope, kept)
    extensions = kept.get("extensions")
    if isinstance(extensions, dict):
        event.update({k: v for k, v in extensions.items() if k not in CONTEXT})
    event.update(_service_extensions(envelope))
    payload = envelope.get("payload")
    if payload is not None:
        event["data_base64" if kept.get("base64") else "data"] = payload
    return event


def encode_cloudevent(envelope: Envelope) -> bytes:
    """The structured CloudEvent's JSON."""
    return orjson.dumps(to_cloudevent(envelope))


def wants_cloudevents(value: Any) -> bool:
    """Whether a ``format`` parameter asks for CloudEvents (else the service's own JSON)."""
    if value in (None, "", "json"):
        return False
    if value == FORMAT:
        return True
    raise ValidationError(
        f'format must be "json" or "{FORMAT}"',
        details={"field": "format", "value": str(value)[:64]},
    )
