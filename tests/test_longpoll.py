"""HTTP long polling: ``GET /v2/workspaces/{workspaceId}/events/poll``."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.test import AsyncClient, override_settings

from events.broker import reset_broker

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v2/workspaces/acme/events/poll"


async def poll(key: str, **params: str):
    return await AsyncClient().get(URL, params, headers={"X-Api-Key": key})


async def emit(key: str, *events: dict) -> list[dict]:
    response = await AsyncClient().post(
        "/v2/workspaces/acme/events",
        json.dumps({"events": list(events)}),
        content_type="application/json",
        headers={"X-Api-Key": key},
    )
    assert response.status_code == 201, response.content
    return response.json()["events"]


async def test_a_waiting_poll_answers_with_the_next_matching_event(broker, key):
    waiting = asyncio.ensure_future(poll(key, timeout="10", types="orders.*"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await emit(key, {"type": "users.created"})
    [emitted] = await emit(key, {"type": "orders.created", "payload": {"n": 1}})
    response = await asyncio.wait_for(waiting, 5)
    assert response.status_code == 200
    body = response.json()
    assert body["events"] == [emitted]
    assert body["cursor"].endswith(f":{emitted['id']}")


async def test_it_answers_with_no_events_at_the_timeout(broker, key):
    response = await poll(key, timeout="0.2")
    assert response.status_code == 200
    body = response.json()
    assert body["events"] == []
    assert body["cursor"]


async def test_resuming_from_the_cursor_loses_nothing_and_repeats_nothing(broker, key):
    first = (await poll(key, timeout="0")).json()["cursor"]
    sent = [e["id"] for e in await emit(key, *[{"type": "tick", "payload": n} for n in range(7)])]
    seen: list[str] = []
    cursor = first
    for _ in range(3):
        body = (await poll(key, timeout="0", cursor=cursor, types="tick")).json()
        seen += [e["id"] for e in body["events"]]
        cursor = body["cursor"]
    sent += [e["id"] for e in await emit(key, {"type": "tick", "payload": 7})]
    body = (await poll(key, timeout="1", cursor=cursor, types="tick")).json()
    seen += [e["id"] for e in body["events"]]
    assert seen == sent


async def test_a_cursor_past_filtered_events_does_not_scan_them_again(broker, key):
    start = (await poll(key, timeout="0")).json()["cursor"]
    [other] = await emit(key, {"type": "other"})
    body = (await poll(key, timeout="0.1", cursor=start, types="wanted")).json()
    assert body["events"] == []
    assert body["cursor"].rpartition(":")[2] >= other["id"]


async def test_it_filters_by_payload_field_and_text(broker, key):
    start = (await poll(key, timeout="0")).json()["cursor"]
    await emit(
        key,
        {"type": "o", "payload": {"region": "eu", "note": "a refund asked"}},
        {"type": "o", "payload": {"region": "us", "note": "shipped"}},
        {"type": "o", "payload": {"region": "eu", "note": "shipped"}},
    )
    body = (
        await poll(key, timeout="0", cursor=start, **{"payload.region": "eu", "text": "refund"})
    ).json()
    assert [e["payload"]["note"] for e in body["events"]] == ["a refund asked"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"cursor": "yesterday"}, "not an event id"),
        ({"cursor": "0" * 100_000}, "longer than 96"),
        ({"cursor": "an epoch!:1-0"}, "not a position"),
        ({"cursor": "e:p:1-0"}, "not a position"),
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": "61"}, "timeout"),
        ({"colour": "red"}, "unknown filter"),
    ],
)
async def test_it_refuses_bad_parameters(broker, key, params, fragment):
    response = (
        await poll(key, timeout="0", **params)
        if "timeout" not in params
        else await poll(key, **params)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationError"
    assert fragment in response.json()["message"]


async def test_a_cursor_older_than_the_buffer_answers_410(broker, key):
    with override_settings(EVENTS_BUFFER_SIZE=50, ARCHIVE_MAX_BACKLOG=50):
        reset_broker()
        [first] = await emit(key, {"type": "old"})
        for _ in range(3):
            await emit(key, *[{"type": "tick"}] * 100)
        response = await poll(key, timeout="0", cursor=first["id"])
    assert response.status_code == 410
    assert response.json()["error"] == "CursorExpired"


async def test_a_cursor_ahead_of_the_stream_answers_410(broker, key):
    response = await poll(key, timeout="0", cursor="9999999999999999-0000000000")
    assert response.status_code == 410
    assert "ahead" in response.json()["message"]


async def test_a_cursor_in_a_short_form_is_the_same_position(broker, key):
    start = (await poll(key, timeout="0")).json()["cursor"]
    [emitted] = await emit(key, {"type": "tick"})
    ms, seq = start.rpartition(":")[2].split("-")
    body = (await poll(key, timeout="1", cursor=f"{int(ms)}-{int(seq)}", types="tick")).json()
    assert body["events"] == [emitted]
