"""The Elasticsearch layout: index names, the index template, and documents.

One index per workspace, ``{prefix}_v1-{workspace}``, created from the index
template ``{prefix}-events`` and reached through the alias
``{prefix}-{workspace}`` (a later ``_v2`` can be filled and swapped in behind
it). A document is the envelope (document id = event id, so storing twice is
a no-op) plus fields that start with ``@``, which search never returns:
``@text`` (the words full text finds, split like ``events.filters.words``),
``@targeted`` (whether the read rule restricts the event), ``@wrapped``
(a payload that is not an object is indexed as ``payload.@value``, since a
``flattened`` field takes objects only) and ``@raw`` (the envelope as JSON,
for the rare event whose fields cannot be indexed as they are).
"""

from __future__ import annotations

from typing import Any

import orjson

from events.event import Envelope, iso_from_ms
from history.documents import event_words, is_targeted, target_value
from kernel.ids import timestamp_ms

# Never sent back: search excludes them from `_source`.
INTERNAL_FIELDS = ["@text", "@targeted"]
WRAPPED_KEY = "@value"

KEYWORD = {"type": "keyword"}
FLATTENED = {"type": "flattened", "depth_limit": 50}
ANALYSIS = {
    "tokenizer": {
        "event_words": {"type": "pattern", "pattern": r"\W+", "flags": "UNICODE_CHARACTER_CLASS"}
    },
    "analyzer": {
        "event_words": {"type": "custom", "tokenizer": "event_words", "filter": ["lowercase"]}
    },
}
SOURCE_FIELDS = ("workspaceId", "userId", "sessionId", "correlationId", "serviceTopic", "ip")
MAPPING: dict[str, Any] = {
    "dynamic": False,
    "dynamic_templates": [
        {
            "source_strings": {
                "path_match": "source.*",
                "match_mapping_type": "string",
                "mapping": KEYWORD,
            }
        },
    ],
    "properties": {
        "id": KEYWORD,
        "type": KEYWORD,
        "createdAt": {"type": "date"},
        "size": {"type": "integer"},
        "payload": FLATTENED,
        "options": FLATTENED,
        "error": FLATTENED,
        "source": {
            "type": "object",
            "dynamic": True,
            "properties": {
                **dict.fromkeys(SOURCE_FIELDS, KEYWORD),
                "host": {"properties": {"service": KEYWORD, "replica": KEYWORD}},
            },
        },
        "target": {"properties": {"userId": KEYWORD, "sessionId": KEYWORD}},
        "@text": {"type": "text", "analyzer": "event_words"},
        "@targeted": {"type": "boolean"},
        "@wrapped": {"type": "boolean"},
    },
}


def index_key(workspace_id: str) -> str:
    """A workspace id in index names: lower case, upper case letters written ``_x``."""
    out = []
    for char in workspace_id:
        if char == "_":
            out.append("__")
        elif char.isupper():
            out.append("_" + char.lower())
        else:
            out.append(char)
    return "".join(out)


def alias_name(prefix: str, workspace_id: str) -> str:
    """The alias searches and writes go through."""
    return f"{prefix}-{index_key(workspace_id)}"


def index_name(prefix: str, workspace_id: str) -> str:
    """The concrete index behind the alias."""
    return f"{prefix}_v1-{index_key(workspace_id)}"


def template_name(prefix: str) -> str:
    """The name of the index template."""
    return f"{prefix}-events"


def template_body(prefix: str) -> dict[str, Any]:
    """The index template every workspace index is created from."""
    return {
        "index_patterns": [f"{prefix}_v1-*"],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1, "analysis": ANALYSIS},
            "mappings": MAPPING,
        },
    }


def document_for(envelope: Envelope) -> dict[str, Any]:
    """The document that stores an envelope."""
    document: dict[str, Any] = {**envelope}
    if not isinstance(envelope.get("payload"), dict):
        document["payload"] = {WRAPPED_KEY: envelope.get("payload")}
        document["@wrapped"] = True
    document["@text"] = " ".join(event_words(envelope))
    document["@targeted"] = is_targeted(envelope)
    return document


def fallback_document(envelope: Envelope) -> dict[str, Any]:
    """A document for an event whose fields the mapping refuses: searchable by id,
    type, date, text and the read rule; returned whole from ``@raw``."""
    target = {k: v for k in ("userId", "sessionId") if (v := target_value(envelope, k))}
    return {
        "id": envelope["id"],
        "type": envelope["type"],
        "createdAt": iso_from_ms(timestamp_ms(envelope["id"])),
        "source": {"workspaceId": envelope["source"]["workspaceId"]},
        "target": target,
        "@text": " ".join(event_words(envelope)),
        "@targeted": is_targeted(envelope),
        "@raw": orjson.dumps(envelope).decode(),
    }


def envelope_from_document(document: dict[str, Any]) -> Envelope:
    """The envelope a stored document holds."""
    if "@raw" in document:
        return orjson.loads(document["@raw"])
    envelope = {k: v for k, v in document.items() if not k.startswith("@")}
    if document.get("@wrapped") and isinstance(envelope.get("payload"), dict):
        envelope["payload"] = envelope["payload"].get(WRAPPED_KEY)
    return envelope  # type: ignore[return-value]
