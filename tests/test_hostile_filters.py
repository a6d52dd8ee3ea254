"""Hostile filters: a filter's cost is bounded, over every endpoint that takes one.

Issue 11, item 1: ``*a*a*a*a*a*!`` against a 128-character type took seconds in
a backtracking regular expression, on the event loop, for every delivery. Now a
filter over a limit is refused with a ValidationError naming the limit (400,
close 4400 or an error frame), and what is allowed matches in linear time
(tests/test_glob.py measures the work).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from events.filters import parse_filters
from kernel.errors import ValidationError
from tests.helpers import connect, next_frames, no_frame, ws_client
from tests.history_helpers import archive_all, emit, search

pytestmark = pytest.mark.django_db(transaction=True)

PATHOLOGICAL = "*a*a*a*a*a*!"  # the issue's pattern: six stars
LONG_TYPE = "a" * 128
# The worst filter the limits allow: 4 stars, values of 256 characters, 50 values.
WORST_TYPES = [("*a" * 4 + "-" + f"{n:03d}").ljust(256, "a") for n in range(50)]

# (filters, the limit named, the field named)
HOSTILE = [
    ({"types": PATHOLOGICAL}, "stars", "types"),
    ({"payload.note": "*x*x*x*x*x"}, "stars", "payload.note"),
    ({"types": "x" * 257}, "valueLength", "types"),
    ({"payload.note": "y" * 100_000}, "valueLength", "payload.note"),
    ({"text": "word " * 60}, "valueLength", "text"),
    ({"types": [f"t{n}" for n in range(51)]}, "values", "types"),
    ({"types": ",".join(f"t{n}" for n in range(51))}, "values", "types"),
    ({"payload.region": ["eu"] * 51}, "values", "payload.region"),
    ({f"payload.k{n}": "v" for n in range(11)}, "fieldKeys", "payload.k10"),
    (
        {"text": ["w1 w2 w3 w4 w5 w6 w7 w8", "w9 w10 w11 w12 w13 w14 w15 w16 w17"]},
        "textWords",
        "text",
    ),
    ({"payload.a.b.c.d.e.f.g.h": "v"}, "pathParts", "payload.a.b.c.d.e.f.g.h"),
    ({"payload." + "p" * 250: "v"}, "pathLength", "payload." + "p" * 250),
]
HOSTILE_IDS = [f"{limit}-{n}" for n, (_, limit, _) in enumerate(HOSTILE)]


def assert_refused(body: dict, limit: str, field: str) -> None:
    """The contract's error shape, naming the limit in the message and the details."""
    assert body["error"] == "ValidationError"
    assert f"limit {limit}" in body["message"]
    assert body["details"]["limit"] == limit
    assert body["details"]["field"] == field[:256]  # a long key is not echoed whole
    assert isinstance(body["details"]["max"], int)


@pytest.mark.parametrize(("filters", "limit", "field"), HOSTILE, ids=HOSTILE_IDS)
def test_it_refuses_a_filter_over_a_limit_naming_it(filters, limit, field):
    with pytest.raises(ValidationError) as refused:
        parse_filters(filters)
    assert_refused(refused.value.as_body(), limit, field)


def test_it_accepts_the_worst_filter_the_limits_allow():
    fields = {f"payload.a.b.c.d.e.f.k{n}": WORST_TYPES for n in range(10)}
    filters = parse_filters({"types": WORST_TYPES, "text": " ".join(["w"] * 16), **fields})
    assert len(filters.types) == 50
    assert len(filters.fields) == 10
    assert not filters.matches({"type": LONG_TYPE, "payload": {"note": LONG_TYPE}})


@pytest.mark.parametrize(
    "filters",
    [
        {"types": {"a": 1}},
        {"types": None},
        {"payload.a": [["nested"]]},
        {"types": [[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]]},
        {"payload..a": "x"},
        {"colour": "red"},
    ],
)
def test_it_refuses_malformed_filters_with_the_field_named(filters):
    with pytest.raises(ValidationError) as refused:
        parse_filters(filters)
    assert refused.value.as_body()["details"]["field"] == next(iter(filters))


# --- over the endpoints -------------------------------------------------------------


async def test_the_issues_pattern_closes_the_handshake_with_4400_naming_the_limit(broker, key):
    client = ws_client(
        query=urlencode({"types": PATHOLOGICAL}), headers=[(b"x-api-key", key.encode())]
    )
    await client.connect(timeout=10)
    closed = await client.receive_output(timeout=10)
    assert closed["type"] == "websocket.close"
    assert closed["code"] == 4400
    assert "limit stars" in closed["reason"]


@pytest.mark.parametrize(("filters", "limit", "field"), HOSTILE, ids=HOSTILE_IDS)
async def test_a_subscribe_frame_over_a_limit_gets_an_error_frame(
    broker, key, filters, limit, field
):
    client = await connect(key, query="types=kept")
    await client.send_json_to({"op": "subscribe", "ref": "s1", "filters": filters})
    [frame] = await next_frames(client, 1, op="error")
    assert frame["ref"] == "s1"
    assert_refused(frame, limit, field)
    await emit(key, {"type": "kept"})
    await next_frames(client, 1, types={"kept"})  # the filters it had are kept
    await client.disconnect()


async def test_a_deeply_nested_subscribe_frame_gets_an_error_frame(broker, key):
    client = await connect(key)
    deep = "[" * 900 + '"x"' + "]" * 900
    await client.send_to(text_data=f'{{"op": "subscribe", "filters": {{"types": {deep}}}}}')
    [frame] = await next_frames(client, 1, op="error")
    assert frame["error"] == "ValidationError"
    assert frame["details"] == {"field": "types"}
    await client.disconnect()


@pytest.mark.parametrize(("filters", "limit", "field"), HOSTILE, ids=HOSTILE_IDS)
async def test_a_long_poll_over_a_limit_answers_400(broker, key, filters, limit, field):
    reply = await AsyncClient().get(
        "/v2/workspaces/acme/events/poll", {"timeout": "0", **filters}, headers={"X-Api-Key": key}
    )
    assert reply.status_code == 400
    assert_refused(reply.json(), limit, field)


@pytest.mark.parametrize(("filters", "limit", "field"), HOSTILE, ids=HOSTILE_IDS)
async def test_a_search_over_a_limit_answers_400(history, key, filters, limit, field):
    reply = await search(key, **filters)
    assert reply.status_code == 400
    assert_refused(reply.json(), limit, field)


async def test_the_worst_allowed_filter_finds_what_it_should_in_the_history(history, key):
    wanted = "a" * 60 + "-" + "a" * 67  # matches "*a*a*a-*" and friends
    await emit(key, {"type": LONG_TYPE}, {"type": wanted, "payload": {"note": wanted}})
    await archive_all()
    worst = [*WORST_TYPES[:49], "*a*a*a-*"]
    reply = await search(key, types=worst, **{"payload.note": worst[::-1]})
    assert reply.status_code == 200, reply.content
    assert [e["type"] for e in reply.json()["result"]["events"]] == [wanted]


async def test_a_worst_allowed_filter_delivers_and_leaves_other_workspaces_alone(
    broker, key, make_key
):
    other_key = await sync_to_async(make_key)("globex")
    hostile = await connect(key, query="types=nothing")  # the worst filter is no URL's size
    await hostile.send_json_to({"op": "subscribe", "filters": {"types": WORST_TYPES}})
    await hostile.send_json_to({"op": "ping"})
    assert await hostile.receive_json_from(timeout=5) == {"op": "pong"}  # no error frame first
    bystander = await connect(other_key, workspace_id="globex", query="types=orders.*")
    await emit(key, *[{"type": LONG_TYPE} for _ in range(20)])
    await emit(other_key, {"type": "orders.created"}, workspace_id="globex")
    [frame] = await next_frames(bystander, 1)
    assert frame["event"]["type"] == "orders.created"
    await hostile.send_json_to({"op": "subscribe", "filters": {"types": ["*a*a*a-*", "x"]}})
    [wanted] = await emit(key, {"type": "a" * 60 + "-" + "a" * 67})
    [got] = await next_frames(hostile, 1)
    assert got["event"]["id"] == wanted["id"]
    assert await no_frame(hostile, types={LONG_TYPE})
    await hostile.disconnect()
    await bystander.disconnect()
