"""The realtime protocol's frames as JSON Schemas: what a client sends, what it gets back.

One definition serves twice: :class:`events.realtime.connection.Connection` takes the
client frames' operations from :data:`CLIENT_FRAMES` (an unknown ``op`` is refused
from here), and the AsyncAPI document (``adapters/http/asyncapi.py``, served at
``/v2/asyncapi.json``) is written from these schemas, so the document and the service
cannot drift apart. The field schemas are built from the constants the validators
check (:data:`events.event.TYPE_PATTERN`, :data:`events.filters.LIMITS`,
:data:`events.realtime.idempotency.MAX_KEY_CHARS`, ...); ``tests/test_asyncapi.py``
checks that the service and the schemas agree on what is accepted, and that every frame
the service sends is one of :data:`SERVER_FRAMES`.

Client frames stay open to extra keys (the service ignores them); the server's own
frames are closed (``additionalProperties: false``): a frame the service sends with a
key the document does not name fails the tests.
"""

from __future__ import annotations

from typing import Any

from events.event import TARGET_KEYS, TYPE_PATTERN
from events.filters import (
    FIELD_ROOTS,
    MAX_FIELD_KEYS,
    MAX_PATH_CHARS,
    MAX_VALUE_CHARS,
    MAX_VALUES,
)
from events.realtime.idempotency import MAX_KEY_CHARS
from kernel.errors import ValidationError

Schema = dict[str, Any]

REF: Schema = {
    "description": "Any JSON value the client chooses; the answer to this frame carries it back",
}
FILTER_VALUE: Schema = {
    "oneOf": [
        {"type": ["string", "number", "boolean"], "maxLength": MAX_VALUE_CHARS},
        {
            "type": "array",
            "maxItems": MAX_VALUES,
            "items": {"type": ["string", "number", "boolean"], "maxLength": MAX_VALUE_CHARS},
        },
    ]
}
FILTERS: Schema = {
    "type": "object",
    "description": (
        "Which events to receive. `types`: event types, comma lists and `prefix*` / `*suffix`"
        " wildcards; `text`: every word must appear in the type or a string of the payload;"
        " any other key is a dotted path into the event (`payload.orderId`) and its values"
        " patterns. A list means OR, different keys mean AND; empty filters match every event."
    ),
    "properties": {"types": FILTER_VALUE, "text": FILTER_VALUE},
    "patternProperties": {
        "^(" + "|".join(FIELD_ROOTS) + r")(\.[^.]+)*$": FILTER_VALUE,
    },
    "additionalProperties": False,
    "propertyNames": {"maxLength": MAX_PATH_CHARS},
    # At most MAX_FIELD_KEYS keys besides ``types`` and ``text``.
    "if": {"required": ["types", "text"]},
    "then": {"maxProperties": MAX_FIELD_KEYS + 2},
    "else": {
        "if": {"anyOf": [{"required": ["types"]}, {"required": ["text"]}]},
        "then": {"maxProperties": MAX_FIELD_KEYS + 1},
        "else": {"maxProperties": MAX_FIELD_KEYS},
    },
}
TARGET: Schema = {
    "type": "object",
    "description": "Deliver only to this user and/or session (and to the workspace's admins)",
    "properties": {key: {"type": "string", "minLength": 1} for key in TARGET_KEYS},
    "additionalProperties": False,
}
OPTIONS: Schema = {
    "type": "object",
    "description": "`persist: false` keeps the event out of the history (live only)",
    "properties": {"persist": {"type": "boolean", "default": True}},
}
CLIENT_EVENT: Schema = {
    "type": "object",
    "description": "What a client sets of an event; the service sets the rest",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "pattern": f"^{TYPE_PATTERN.pattern}$"},
        "payload": {"description": "Any JSON value"},
        "target": TARGET,
        "options": OPTIONS,
    },
}
SOURCE: Schema = {
    "type": "object",
    "description": "Who emitted the event, set by the service",
    "required": ["workspaceId"],
    "properties": {
        "workspaceId": {"type": "string"},
        "userId": {"type": ["string", "null"]},
        "sessionId": {"type": ["string", "null"]},
        "correlationId": {"type": ["string", "null"]},
        "serviceTopic": {"type": ["string", "null"]},
        "ip": {"type": ["string", "null"]},
        "host": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
ENVELOPE: Schema = {
    "type": "object",
    "description": (
        "The event as the service delivers and stores it. Events written to the broker by"
        " other services may carry more keys."
    ),
    "required": ["id", "type", "payload", "source", "options", "createdAt", "size"],
    "properties": {
        "id": {"type": "string", "description": "The broker's id, `<ms>-<seq>`"},
        "type": {"type": "string", "pattern": f"^{TYPE_PATTERN.pattern}$"},
        "payload": {"description": "Any JSON value"},
        "source": SOURCE,
        "target": TARGET,
        "options": OPTIONS,
        "error": {"type": "object", "description": "On `error` events: what failed"},
        "createdAt": {"type": "string", "format": "date-time"},
        "size": {"type": "integer", "minimum": 0, "description": "Bytes of the stored JSON"},
    },
}
_TEXT: Schema = {"type": "string", "minLength": 1}
CLOUDEVENT: Schema = {
    "type": "object",
    "description": (
        "With `format=cloudevents`: the event as a structured CloudEvent 1.0, the service's"
        " fields as extension attributes (docs/CLOUDEVENTS.md)"
    ),
    "required": ["specversion", "id", "source", "type", "time", "datacontenttype", "eventid"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": _TEXT,
        "source": _TEXT,
        "type": {"type": "string", "pattern": f"^{TYPE_PATTERN.pattern}$"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": _TEXT,
        "subject": _TEXT,
        "dataschema": _TEXT,
        "data": {"description": "Any JSON value: the event's payload"},
        "data_base64": {"type": "string", "description": "Data that came as bytes"},
        "eventid": {"type": "string", "description": "The service's event id, `<ms>-<seq>`"},
        "workspace": {"type": "string"},
        "size": {"type": "integer", "minimum": 0},
        "persist": {"type": "boolean"},
    },
    "propertyNames": {"pattern": "^([a-z0-9]{1,64}|data_base64)$"},
    "additionalProperties": {"type": ["string", "integer", "boolean"]},
}
EVENT_IN_FORMAT: Schema = {
    "description": "The event: the service's JSON, or a CloudEvent with `format=cloudevents`",
    "oneOf": [ENVELOPE, CLOUDEVENT],
}
POSITION: Schema = {
    "type": "string",
    "description": "`<epoch>:<event id>`: what a client resumes from with `lastEventId`",
    "pattern": "^[^:]+:[0-9]+-[0-9]+$",
}
ERROR_BODY: Schema = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {
            "type": "string",
            "description": "The error's code: ValidationError, PermissionDenied, ...",
        },
        "message": {"type": "string"},
        "details": {"type": "object"},
        "correlationId": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
}


def _frame(op: str, properties: Schema, required: tuple[str, ...], *, closed: bool) -> Schema:
    schema: Schema = {
        "type": "object",
        "required": ["op", *required],
        "properties": {"op": {"const": op}, **properties},
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


# What a client sends: its op, a summary, and the frame's schema. In this order in errors.
CLIENT_FRAMES: dict[str, tuple[str, Schema]] = {
    "subscribe": (
        "Replace the connection's filters (the handshake's query string gave the first"
        " ones); no answer unless refused",
        _frame("subscribe", {"ref": REF, "filters": {**FILTERS, "default": {}}}, (), closed=False),
    ),
    "emit": (
        "Emit one event; answered in order by an ack or an error with the same ref",
        _frame(
            "emit",
            {
                "ref": REF,
                "event": CLIENT_EVENT,
                "idempotencyKey": {
                    "type": "string",
                    "pattern": f"^[!-~]{{1,{MAX_KEY_CHARS}}}$",
                    "description": (
                        "A retry with the same key is answered with the first ack (the event"
                        " is published once)"
                    ),
                },
            },
            ("event",),
            closed=False,
        ),
    ),
    "ping": (
        "Ask for a pong (a keep-alive the client controls)",
        _frame("ping", {"ref": REF}, (), closed=False),
    ),
}

# What the service sends on a WebSocket.
SERVER_FRAMES: dict[str, tuple[str, Schema]] = {
    "event": (
        "An event that matches the filters; `position` is where to resume from",
        _frame("event", {"event": EVENT_IN_FORMAT, "position": POSITION}, ("event",), closed=True),
    ),
    "ack": (
        "An emit was accepted: the event as stored, under the emit's ref",
        _frame("ack", {"ref": REF, "event": ENVELOPE}, ("ref", "event"), closed=True),
    ),
    "error": (
        "A frame was refused (the connection stays open): the contract's error body",
        {
            **ERROR_BODY,
            "required": ["op", "ref", *ERROR_BODY["required"]],
            "properties": {"op": {"const": "error"}, "ref": REF, **ERROR_BODY["properties"]},
        },
    ),
    "pong": ("The answer to a ping", _frame("pong", {}, (), closed=True)),
}


def client_op(frame: dict[str, Any]) -> str:
    """The operation of a client frame, or a ValidationError naming the known ones."""
    op = frame.get("op")
    if not isinstance(op, str) or op not in CLIENT_FRAMES:
        *first, last = CLIENT_FRAMES
        raise ValidationError(
            f"unknown op {op!r}; use {', '.join(first)} or {last}", details={"field": "op"}
        )
    return op
