"""The event: validation, the stored form, and entries other services write."""

from __future__ import annotations

import orjson
import pytest

from events.event import (
    encode_stored,
    envelope_from_stored,
    is_persistent,
    parse_batch,
    parse_client_event,
)
from kernel.errors import EventTooLarge, ValidationError
from kernel.ids import format_id, from_stream_id, parse_id, to_stream_id


@pytest.mark.parametrize("event_type", ["a", "orders.created", "A b_c-d.9", "x" * 128])
def test_it_accepts_valid_types(event_type):
    assert parse_client_event({"type": event_type})["type"] == event_type


@pytest.mark.parametrize("event_type", ["", "x" * 129, "a/b", "é", None, 5])
def test_it_refuses_invalid_types(event_type):
    with pytest.raises(ValidationError):
        parse_client_event({"type": event_type})


def test_it_keeps_only_what_a_client_may_set():
    event = parse_client_event(
        {"type": "a", "payload": [1], "id": "x", "source": {}, "size": 1, "error": {}}
    )
    assert event == {"type": "a", "payload": [1], "options": {"persist": True}}


def test_it_refuses_an_oversize_event():
    with pytest.raises(EventTooLarge) as caught:
        encode_stored({"payload": "x" * 300}, max_bytes=256, index=3)
    assert caught.value.details["index"] == 3
    assert caught.value.status == 413


def test_a_batch_names_the_bad_event():
    with pytest.raises(ValidationError) as caught:
        parse_batch({"events": [{"type": "a"}, {"type": ""}]}, max_batch=100)
    assert caught.value.details["index"] == 1


def test_it_normalizes_an_entry_written_by_another_service():
    data = orjson.dumps({"type": "billing.paid", "id": "forged", "size": 1, "source": "x"})
    envelope = envelope_from_stored(format_id(1_764_302_400_123, 0), data, "acme")
    assert envelope is not None
    assert envelope["id"] == "0001764302400123-0000000000"
    assert envelope["createdAt"] == "2025-11-28T04:00:00.123Z"
    assert envelope["source"] == {"workspaceId": "acme"}
    assert envelope["options"] == {"persist": True}
    assert envelope["size"] == len(data)


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"type": "bad/type"}', b"{}"])
def test_it_skips_entries_that_are_not_events(data):
    assert envelope_from_stored(format_id(1, 0), data, "acme") is None


def test_ids_order_as_strings_in_publish_order():
    ids = [from_stream_id(s) for s in ("1764302400123-9", "1764302400123-10", "1764302400124-0")]
    assert ids == sorted(ids)
    assert to_stream_id(ids[1]) == "1764302400123-10"
    with pytest.raises(ValidationError):
        parse_id("yesterday")


def test_persist_false_is_not_persistent():
    assert is_persistent({"options": {"persist": True}})
    assert not is_persistent({"options": {"persist": False}})
