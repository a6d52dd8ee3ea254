"""Idempotent emits: ``Idempotency-Key`` on HTTP, ``idempotencyKey`` on the WebSocket frame.

A retried emit with the same key, within ``EVENTS_IDEMPOTENCY_SECS``, gets the first
answer (same status, same body, same event ids) and publishes nothing more, on both
brokers, and across service processes sharing Redis.
"""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
import websockets
from asgiref.sync import sync_to_async
from django.test import AsyncClient, override_settings

from events.broker import get_live_stream, reset_broker
from events.broker.redis import stream_key
from events.event import parse_client_event
from events.realtime.idempotency import fingerprint, get_store, reset_store, slot_for
from kernel.caller import Caller
from kernel.ids import ZERO_ID
from tests.conftest import REDIS_TEST_URL
from tests.helpers import connect, eventually, next_frames
from tests.servers import Deployment
from tests.test_emit_http import URL, emit_body, post
from tests.test_metrics import value
from workspaces.models import split_key

pytestmark = pytest.mark.django_db(transaction=True)
HEADER = "Idempotency-Key"


async def stored_ids(workspace_id: str = "acme", event_type: str | None = None) -> list[str]:
    """The ids of the events the broker holds (of one type; not the audit's), in publish order."""
    page = await get_live_stream().read_after(workspace_id, ZERO_ID, count=1000)
    emitted = [e for e in page.events if not e["type"].startswith("events.")]
    return [e["id"] for e in emitted if event_type is None or e["type"] == event_type]


async def test_a_retried_emit_gets_the_first_answer_and_publishes_once(broker, key):
    body = emit_body({"type": "orders.created", "payload": 1}, {"type": "orders.paid"})
    first = await post(key, body, **{HEADER: "order-1"})
    again = await post(key, body, **{HEADER: "order-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert await stored_ids() == [e["id"] for e in first.json()["events"]]


async def test_an_emit_without_a_key_publishes_each_time(broker, key):
    body = emit_body({"type": "a"})
    await post(key, body)
    await post(key, body)
    assert len(await stored_ids()) == 2


async def test_other_keys_and_other_callers_are_independent(broker, key, make_key):
    other_key = await sync_to_async(make_key)("acme", "emit,consume")
    stranger = await sync_to_async(make_key)("globex", "emit,consume")
    body = emit_body({"type": "a"})
    first = (await post(key, body, **{HEADER: "k"})).json()
    answers = [
        await post(key, body, **{HEADER: "k2"}),
        await post(other_key, body, **{HEADER: "k"}),
        await post(stranger, body, url="/v2/workspaces/globex/events", **{HEADER: "k"}),
    ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert all("Idempotent-Replayed" not in a for a in answers)
    ids = {a.json()["events"][0]["id"] for a in answers[:2]}
    assert first["events"][0]["id"] not in ids
    assert len(await stored_ids("acme")) == 3
    assert len(await stored_ids("globex")) == 1


async def test_the_same_key_with_another_body_is_refused_and_publishes_nothing(broker, key):
    await post(key, emit_body({"type": "a", "payload": 1}), **{HEADER: "k"})
    response = await post(key, emit_body({"type": "a", "payload": 2}), **{HEADER: "k"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "IdempotencyKeyReused"
    assert "idempotency key" in body["message"]
    assert len(await stored_ids()) == 1


async def test_a_failed_first_attempt_leaves_the_key_free(broker, key):
    big = {"type": "a", "payload": "x" * 102_400}
    refused = await post(key, emit_body(big), **{HEADER: "k"})
    assert refused.status_code == 413
    retried = await post(key, emit_body({"type": "a"}), **{HEADER: "k"})
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert len(await stored_ids()) == 1


async def test_after_the_window_the_same_key_publishes_again(broker, key):
    body = emit_body({"type": "a"})
    with override_settings(EVENTS_IDEMPOTENCY_SECS=1):
        first = await post(key, body, **{HEADER: "k"})
        answers = []

        async def published_again() -> bool:
            answers.append(await post(key, body, **{HEADER: "k"}))
            return "Idempotent-Replayed" not in answers[-1]

        await eventually(published_again)
    assert answers[-1].status_code == 201
    assert answers[-1].json()["events"][0]["id"] != first.json()["events"][0]["id"]
    assert len(await stored_ids()) == 2


async def test_a_retry_while_the_first_is_in_flight_gets_409(broker, key):
    # Another process holds the claim, as while it publishes: the store is the shared state.
    events = [parse_client_event({"type": "a"})]
    caller = Caller.for_api_key("acme", "any", frozenset(), key_id=split_key(key))
    claim = b"C " + fingerprint(events) + b" elsewhere"
    await get_store().claim(slot_for("acme", caller, "k"), claim, 60_000)
    response = await post(key, emit_body({"type": "a"}), **{HEADER: "k"})
    assert response.status_code == 409
    assert response.json()["error"] == "Conflict"
    assert response["Retry-After"] == "1"
    other = await post(key, emit_body({"type": "b"}), **{HEADER: "k"})
    assert other.status_code == 422
    assert await stored_ids() == []


async def test_a_retry_after_a_broker_outage_publishes_once(own_redis, key):
    own_redis.stop()
    down = await post(key, emit_body({"type": "a"}), **{HEADER: "k"})
    assert down.status_code == 503
    own_redis.start()
    retried = await post(key, emit_body({"type": "a"}), **{HEADER: "k"})
    again = await post(key, emit_body({"type": "a"}), **{HEADER: "k"})
    assert (retried.status_code, again.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in retried
    assert again.json() == retried.json()
    assert await stored_ids(event_type="a") == [retried.json()["events"][0]["id"]]


async def test_the_embedded_store_keeps_the_newest_answers_within_its_bound(workspace, key):
    with override_settings(REDIS_URL="", EVENTS_IDEMPOTENCY_MEMORY_BYTES=65_536):
        reset_broker()
        reset_store()
        body = emit_body({"type": "a", "payload": "x" * 1_000})
        for n in range(100):  # about 130 KB of answers: twice the bound
            assert (await post(key, body, **{HEADER: f"k{n}"})).status_code == 201
        newest = await post(key, body, **{HEADER: "k99"})
        oldest = await post(key, body, **{HEADER: "k0"})
        count = len(await stored_ids())
        reset_broker()
        reset_store()
    assert newest["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in oldest
    assert count == 101


async def test_replays_are_counted_in_the_metrics_by_transport(broker, key):
    async def replays() -> float:
        text = (await AsyncClient().get("/metrics")).content.decode()
        try:
            return value(text, "events_idempotent_replays_total", transport="http")
        except AssertionError:
            return 0.0

    before = await replays()
    for _ in range(3):
        await post(key, emit_body({"type": "a"}), **{HEADER: "counted"})
    assert await replays() == before + 2


@pytest.mark.parametrize(
    "value",
    # A server hands on a header's bytes as latin-1: UTF-8 arrives as what the last one is.
    [
        "",
        "x" * 256,
        "x" * 1_000_000,
        "a\x00b",
        "a\tb",
        "a b",
        "caf\u00e9",
        "\u2603".encode().decode("latin-1"),
    ],
    ids=["empty", "256-chars", "huge", "nul", "tab", "space", "latin-1", "utf-8"],
)
async def test_a_hostile_key_is_refused_with_400_naming_the_header(broker, key, value):
    response = await post(key, emit_body({"type": "a"}), **{HEADER: value})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "ValidationError"
    assert body["details"] == {"field": HEADER}
    assert await stored_ids() == []


async def test_a_key_of_255_visible_characters_is_taken(broker, key):
    value = "".join(chr(33 + i % 94) for i in range(255))
    first = await post(key, emit_body({"type": "a"}), **{HEADER: value})
    again = await post(key, emit_body({"type": "a"}), **{HEADER: value})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()


async def test_a_deeply_nested_payload_with_a_key_is_a_400(broker, key):
    deep = "[" * 300 + "]" * 300
    body = '{"events": [{"type": "a", "payload": ' + deep + "}]}"
    response = await post(key, body, **{HEADER: "k"})
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationError"
    assert await stored_ids() == []


async def test_the_schema_documents_the_header(broker, workspace):
    schema = (await AsyncClient().get("/v2/schema?format=json")).json()
    operation = schema["paths"]["/v2/workspaces/{workspace_id}/events"]["post"]
    [parameter] = [p for p in operation["parameters"] if p["name"] == HEADER]
    assert parameter["in"] == "header"
    assert parameter.get("required", False) is False
    assert parameter["schema"]["maxLength"] == 255
    assert {"409", "422"} <= set(operation["responses"])


# --- Across processes: the acceptance -----------------------------------------


async def emit_to(running: Deployment, index: int, body: str, idempotency_key: str | bytes):
    async with httpx.AsyncClient(base_url=running.http(index)) as client:
        return await client.post(
            URL,
            content=body,
            headers={
                "X-Api-Key": running.key,
                "Content-Type": "application/json",
                HEADER: idempotency_key,
            },
        )


async def test_a_retry_sent_to_a_second_process_publishes_once(two_processes):
    body = emit_body({"type": "across.processes", "payload": {"n": 1}})
    first = await emit_to(two_processes, 0, body, "across-1")
    again = await emit_to(two_processes, 1, body, "across-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    client = aioredis.Redis.from_url(REDIS_TEST_URL)
    try:
        entries = await client.xrange(stream_key("acme"))
    finally:
        await client.aclose()
    published = [e for _, e in entries if b"across.processes" in e[b"event"]]
    assert len(published) == 1


@pytest.mark.parametrize(
    "value", ["\u2603".encode(), b"x" * 256, b"a\x7fb"], ids=["utf-8", "256-chars", "del"]
)
async def test_a_real_server_refuses_a_hostile_key_with_400(two_processes, value):
    response = await emit_to(two_processes, 0, emit_body({"type": "hostile"}), value)
    assert response.status_code == 400
    assert response.json()["details"] == {"field": HEADER}


# --- The WebSocket emit frame's ``idempotencyKey`` ---------------------------------------


def emit_frame(ref: str, event: dict, idempotency_key=None) -> dict:
    frame = {"op": "emit", "ref": ref, "event": event}
    if idempotency_key is not None:
        frame["idempotencyKey"] = idempotency_key
    return frame


async def answer_to(client, frame: dict) -> dict:
    """Send one frame; the ack or error frame that answers it."""
    await client.send_json_to(frame)
    while True:
        got = await client.receive_json_from(timeout=10)
        if got["op"] in ("ack", "error") and got.get("ref") == frame["ref"]:
            return got


async def test_a_retried_websocket_emit_gets_the_first_ack_even_after_a_reconnect(broker, key):
    event = {"type": "chat.sent", "payload": {"text": "hi"}}
    client = await connect(key, query="types=none")
    first = await answer_to(client, emit_frame("r1", event, "msg-1"))
    again = await answer_to(client, emit_frame("r2", event, "msg-1"))
    await client.disconnect()
    client = await connect(key, query="types=none")
    after_reconnect = await answer_to(client, emit_frame("r3", event, "msg-1"))
    await client.disconnect()
    assert [first["op"], again["op"], after_reconnect["op"]] == ["ack"] * 3
    assert again == {**first, "ref": "r2"}
    assert after_reconnect == {**first, "ref": "r3"}
    assert await stored_ids(event_type="chat.sent") == [first["event"]["id"]]


async def test_http_and_websocket_emits_share_the_keys(broker, key):
    event = {"type": "a", "payload": 1}
    [envelope] = (await post(key, emit_body(event), **{HEADER: "k"})).json()["events"]
    client = await connect(key, query="types=none")
    ack = await answer_to(client, emit_frame("r1", event, "k"))
    refused = await answer_to(client, emit_frame("r2", {"type": "a", "payload": 2}, "k"))
    await client.disconnect()
    assert ack["event"] == envelope
    assert (refused["op"], refused["error"]) == ("error", "IdempotencyKeyReused")
    assert await stored_ids() == [envelope["id"]]


async def test_keyed_and_plain_websocket_emits_are_answered_in_order(broker, key):
    client = await connect(key, query="types=none")
    frames = [
        emit_frame("plain-1", {"type": "a"}),
        emit_frame("keyed", {"type": "b"}, "k"),
        emit_frame("plain-2", {"type": "c"}),
        emit_frame("keyed-again", {"type": "b"}, "k"),
    ]
    for frame in frames:
        await client.send_json_to(frame)
    acks = await next_frames(client, 4, op="ack")
    await client.disconnect()
    assert [a["ref"] for a in acks] == ["plain-1", "keyed", "plain-2", "keyed-again"]
    assert acks[3]["event"] == acks[1]["event"]
    assert await stored_ids() == [a["event"]["id"] for a in acks[:3]]


@pytest.mark.parametrize(
    "value",
    ["", "x" * 256, "x" * 1_000_000, "a\x00b", "a b", "\u2603", 42, ["k"], {"k": 1}, True],
    ids=["empty", "256", "huge", "nul", "space", "unicode", "number", "list", "object", "bool"],
)
async def test_a_hostile_websocket_key_gets_an_error_frame_and_the_socket_goes_on(
    broker, key, value
):
    client = await connect(key, query="types=none")
    refused = await answer_to(client, emit_frame("bad", {"type": "a"}, value))
    accepted = await answer_to(client, emit_frame("good", {"type": "a"}, "k"))
    await client.disconnect()
    assert (refused["op"], refused["error"]) == ("error", "ValidationError")
    assert refused["details"] == {"field": "idempotencyKey"}
    assert accepted["op"] == "ack"
    assert await stored_ids() == [accepted["event"]["id"]]


async def ws_answer(url: str, frame: dict) -> dict:
    async with websockets.connect(url) as socket:
        await socket.send(orjson.dumps(frame).decode())
        while True:
            got = orjson.loads(await socket.recv())
            if got.get("ref") == frame["ref"]:
                return got


async def test_a_websocket_retry_on_a_second_process_publishes_once(two_processes):
    event = {"type": "across.sockets", "payload": {"n": 1}}
    query = f"apiKey={two_processes.key}&types=none"
    first = await ws_answer(two_processes.ws(0, query), emit_frame("r1", event, "ws-across"))
    again = await ws_answer(two_processes.ws(1, query), emit_frame("r2", event, "ws-across"))
    assert first["op"] == "ack"
    assert again == {**first, "ref": "r2"}
    client = aioredis.Redis.from_url(REDIS_TEST_URL)
    try:
        entries = await client.xrange(stream_key("acme"))
    finally:
        await client.aclose()
    assert len([e for _, e in entries if b"across.sockets" in e[b"event"]]) == 1


async def test_a_caller_that_goes_away_mid_publish_leaves_the_first_answer_for_its_retry(
    broker, key, monkeypatch
):
    """A client that timed out while its events went into the broker retries: it must get
    the first answer, not a free key that publishes the events a second time."""
    from events.realtime import idempotency
    from kernel.context import RequestContext

    appending, go_on = asyncio.Event(), asyncio.Event()
    real_publish = idempotency.publish

    async def slow_broker(*args, **kwargs):
        appending.set()
        await go_on.wait()
        return await real_publish(*args, **kwargs)

    monkeypatch.setattr(idempotency, "publish", slow_broker)
    events = [parse_client_event({"type": "orders.created"})]
    caller = Caller.for_api_key("acme", "any", frozenset({"emit"}), key_id=split_key(key))
    context = RequestContext(correlation_id="c-1", transport="http")
    first = asyncio.create_task(
        idempotency.publish_once("acme", events, caller=caller, context=context, key="k-gone")
    )
    await asyncio.wait_for(appending.wait(), 5)
    first.cancel()  # the client went away: Django cancels its request
    go_on.set()
    await eventually(lambda: _published_once())
    retry = await idempotency.publish_once(
        "acme", events, caller=caller, context=context, key="k-gone"
    )
    assert retry.replayed
    assert [e["id"] for e in retry.envelopes] == await stored_ids(event_type="orders.created")


async def _published_once() -> bool:
    return len(await stored_ids(event_type="orders.created")) == 1
