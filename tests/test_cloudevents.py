"""CloudEvents 1.0 (issue 14): emitted in structured, batched and binary mode, consumed with
``format=cloudevents``; built and parsed with the official ``cloudevents`` SDK.

The mapping is docs/CLOUDEVENTS.md; an event emitted as a CloudEvent and read back as one
is the same event (the service's own fields come as extra extension attributes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from django.test import AsyncClient

from events.broker import get_live_stream
from events.realtime.publishing import publish
from kernel.context import RequestContext
from kernel.ids import ZERO_ID
from tests.helpers import connect, next_frames, ws_client
from tests.history_helpers import archive_all, close_history, search  # noqa: F401
from tests.servers import deployment
from tests.sse_client import Reader
from tests.sse_client import stream as sse_stream
from tests.test_asyncapi import describe, served_document

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v2/workspaces/acme/events"
FORMAT = JSONFormat()
BATCH = "application/cloudevents-batch+json"


def order_event(**attributes: Any) -> CloudEvent:
    """A CloudEvent as a producer elsewhere builds it with the SDK."""
    data = attributes.pop("data", {"orderId": 42, "lines": [{"sku": "a-1", "qty": 2}]})
    base = {
        "type": "com.example.orders.created",
        "source": "/shop/orders",
        "id": "order-42",
        "time": datetime(2026, 12, 4, 20, 0, 0, 123000, tzinfo=UTC),
        "subject": "orders/42",
        "datacontenttype": "application/json",
        "region": "eu",
    }
    merged = {name: value for name, value in {**base, **attributes}.items() if value is not None}
    return CloudEvent(merged, data)


async def send(key: str, body: bytes | str, content_type: str, **headers: str) -> Any:
    """POST an emit with the given Content-Type and extra headers."""
    return await AsyncClient().post(
        URL, body, content_type=content_type, headers={"X-Api-Key": key, **headers}
    )


async def send_structured(key: str, event: CloudEvent) -> Any:
    message = to_structured(event, FORMAT)
    return await send(key, message.body, message.headers["content-type"])


async def send_batch(key: str, *events: CloudEvent) -> Any:
    body = b"[" + b",".join(FORMAT.write(event) for event in events) + b"]"
    return await send(key, body, BATCH)


async def send_binary(key: str, event: CloudEvent) -> Any:
    message = to_binary(event, FORMAT)
    headers = dict(message.headers)
    content_type = headers.pop("content-type", "")
    return await send(key, message.body, content_type, **headers)


def parsed(data: bytes | str | dict) -> CloudEvent:
    """What the service sent, parsed (and so validated) by the SDK."""
    raw = data if isinstance(data, (bytes, str)) else json.dumps(data)
    return FORMAT.read(None, raw)  # type: ignore[return-value]


def same_event(sent: CloudEvent, received: CloudEvent) -> None:
    """Round trip: every attribute sent comes back equal, and the data too."""
    attributes = received.get_attributes()
    for name, value in sent.get_attributes().items():
        assert attributes.get(name) == value, name
    assert received.get_data() == sent.get_data()


async def stored() -> list[dict]:
    page = await get_live_stream().read_after("acme", ZERO_ID, count=1000)
    return [event for event in page.events if not event["type"].startswith("events.")]


# --- emit -----------------------------------------------------------------------------------


async def test_it_accepts_a_structured_cloudevent(broker, key):
    reply = await send_structured(key, order_event())
    assert reply.status_code == 201, reply.content
    [envelope] = reply.json()["events"]
    assert envelope["type"] == "com.example.orders.created"
    assert envelope["payload"] == {"orderId": 42, "lines": [{"sku": "a-1", "qty": 2}]}
    assert envelope["source"]["userId"].startswith("apikey:")
    assert [e["id"] for e in await stored()] == [envelope["id"]]


async def test_it_accepts_a_batch_of_cloudevents_in_order(broker, key):
    events = [order_event(id=f"order-{n}", data={"n": n}) for n in range(3)]
    reply = await send_batch(key, *events)
    assert reply.status_code == 201, reply.content
    assert [e["payload"] for e in reply.json()["events"]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [e["payload"] for e in await stored()] == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_it_accepts_a_binary_cloudevent(broker, key):
    reply = await send_binary(key, order_event())
    assert reply.status_code == 201, reply.content
    [envelope] = reply.json()["events"]
    assert envelope["payload"] == {"orderId": 42, "lines": [{"sku": "a-1", "qty": 2}]}
    assert envelope["cloudevent"]["extensions"] == {"region": "eu"}


async def test_it_keeps_text_and_binary_data_of_binary_mode(broker, key):
    text = order_event(datacontenttype="text/plain", data="héllo")
    raw = order_event(id="b", datacontenttype="application/octet-stream", data=b"\x00\xff\x10")
    assert (await send_binary(key, text)).json()["events"][0]["payload"] == "héllo"
    envelope = (await send_binary(key, raw)).json()["events"][0]
    assert envelope["payload"] == "AP8Q"
    assert envelope["cloudevent"]["base64"] is True


async def test_it_maps_target_and_persist_extensions(broker, key):
    event = order_event(targetuserid="u-43", persist=False)
    [envelope] = (await send_structured(key, event)).json()["events"]
    assert envelope["target"] == {"userId": "u-43"}
    assert envelope["options"] == {"persist": False}


async def test_it_ignores_the_service_extensions_a_client_sends(broker, key):
    forged = order_event(workspace="other", userid="someone-else", eventid="1-1")
    [envelope] = (await send_structured(key, forged)).json()["events"]
    assert envelope["source"]["workspaceId"] == "acme"
    assert envelope["source"]["userId"].startswith("apikey:")
    assert envelope["cloudevent"]["extensions"] == {"region": "eu"}


async def test_the_plain_json_emit_still_works(broker, key):
    body = json.dumps({"events": [{"type": "a", "payload": 1}]})
    reply = await send(key, body, "application/json")
    assert reply.status_code == 201
    assert "cloudevent" not in reply.json()["events"][0]


async def test_an_idempotency_key_makes_a_cloudevent_retry_safe(broker, key):
    message = to_structured(order_event(), FORMAT)
    content_type = message.headers["content-type"]
    first = await send(key, message.body, content_type, **{"Idempotency-Key": "ce-1"})
    again = await send(key, message.body, content_type, **{"Idempotency-Key": "ce-1"})
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(await stored()) == 1


async def test_the_batch_limit_holds_for_cloudevents(broker, key, settings):
    settings.EVENTS_MAX_BATCH = 2
    reply = await send_batch(key, *(order_event(id=str(n)) for n in range(3)))
    assert reply.status_code == 400
    assert reply.json()["details"]["count"] == 3
    assert await stored() == []


async def test_the_event_size_limit_holds_for_cloudevents(broker, key, settings):
    settings.EVENTS_MAX_EVENT_BYTES = 1000
    reply = await send_structured(key, order_event(data={"big": "x" * 2000}))
    assert reply.status_code == 413
    assert reply.json()["error"] == "EventTooLarge"


# --- invalid CloudEvents --------------------------------------------------------------------


def structured_dict(**changes: Any) -> dict:
    event = json.loads(FORMAT.write(order_event()))
    for name, value in changes.items():
        if value is ...:
            event.pop(name, None)
        else:
            event[name] = value
    return event


DEEP: Any = "x"
for _ in range(300):
    DEEP = [DEEP]

INVALID = {
    "no specversion": (structured_dict(specversion=...), "specversion"),
    "wrong specversion": (structured_dict(specversion="0.3"), "specversion"),
    "numeric specversion": (structured_dict(specversion=1.0), "specversion"),
    "bad time": (structured_dict(time="yesterday"), "time"),
    "impossible time": (structured_dict(time="2026-13-45T25:61:00Z"), "time"),
    "time without zone": (structured_dict(time="2026-12-04T20:00:00"), "time"),
    "no type": (structured_dict(type=...), "type"),
    "bad type": (structured_dict(type="a/b"), "type"),
    "no source": (structured_dict(source=...), "source"),
    "empty source": (structured_dict(source=""), "source"),
    "no id": (structured_dict(id=...), "id"),
    "numeric id": (structured_dict(id=42), "id"),
    "huge id": (structured_dict(id="i" * 100_000), "id"),
    "control characters": (structured_dict(subject="a\nb"), "subject"),
    "upper-case extension": (structured_dict(Region="eu"), "Region"),
    "extension with a dash": (structured_dict(**{"my-ext": "1"}), "my-ext"),
    "nested extension": (structured_dict(region={"a": [1, {"b": 2}]}), "region"),
    "deep extension": (structured_dict(region=DEEP), "region"),
    "float extension": (structured_dict(region=1.5), "region"),
    "huge integer extension": (structured_dict(region=2**40), "region"),
    "many extensions": (structured_dict(**{f"x{n}": "v" for n in range(100)}), "x31"),
    "data and data_base64": (structured_dict(data_base64="AAAA"), "data_base64"),
    "bad base64": (structured_dict(data=..., data_base64="!!!"), "data_base64"),
    "bad persist": (structured_dict(persist="maybe"), "persist"),
}


@pytest.mark.parametrize(("event", "attribute"), INVALID.values(), ids=INVALID.keys())
async def test_it_refuses_an_invalid_cloudevent_naming_the_attribute(broker, key, event, attribute):
    reply = await send(key, json.dumps(event), "application/cloudevents+json")
    assert reply.status_code == 400, reply.content
    body = reply.json()
    assert body["error"] == "ValidationError"
    assert body["details"]["attribute"] == attribute
    assert await stored() == []


async def test_it_refuses_a_batch_whole_naming_the_index(broker, key):
    events = [structured_dict(), structured_dict(time="noon")]
    reply = await send(key, json.dumps(events), BATCH)
    assert reply.status_code == 400
    assert reply.json()["details"] == {"index": 1, "attribute": "time"}
    assert await stored() == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "application/cloudevents+json"),
        (b"[1, 2", BATCH),
        (b'"a string"', "application/cloudevents+json"),
        (b"[]", BATCH),
        (b"{}", BATCH),
        (b"[" * 100_000 + b"]" * 100_000, BATCH),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/cloudevents+json"),
    ],
    ids=["not json", "cut", "not an object", "empty batch", "batch not an array", "deep", "deep2"],
)
async def test_it_refuses_malformed_and_pathological_bodies(broker, key, body, content_type):
    reply = await send(key, body, content_type)
    assert reply.status_code == 400, reply.content
    assert reply.json()["error"] == "ValidationError"


async def test_it_refuses_a_deeply_nested_data(broker, key):
    reply = await send(key, json.dumps(structured_dict(data=DEEP)), "application/cloudevents+json")
    assert reply.status_code == 400, reply.content
    assert reply.json()["error"] == "ValidationError"


@pytest.mark.parametrize(
    ("headers", "attribute"),
    [
        ({"ce-id": "1", "ce-source": "/s", "ce-type": "t"}, "specversion"),
        ({"ce-specversion": "2.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, "specversion"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s"}, "type"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-type": "t"}, "source"),
        ({"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}, "id"),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "t",
                "ce-time": "x",
            },
            "time",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "t",
                "ce-a.b": "x",
            },
            "a.b",
        ),
    ],
)
async def test_it_refuses_an_invalid_binary_cloudevent(broker, key, headers, attribute):
    reply = await send(key, b'{"a": 1}', "application/json", **headers)
    assert reply.status_code == 400, reply.content
    assert reply.json()["details"]["attribute"] == attribute


async def test_it_refuses_binary_data_that_is_not_what_its_content_type_says(broker, key):
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
    reply = await send(key, b"{not json", "application/json", **headers)
    assert reply.status_code == 400
    assert reply.json()["details"]["attribute"] == "data"
    reply = await send(key, b"\xff\xfe", "text/plain", **headers)
    assert reply.json()["details"]["attribute"] == "data"


# --- consume: format=cloudevents -----------------------------------------------------------

MODES = {
    "structured": (send_structured, "structured"),
    "batched": (send_batch, "batched"),
    "binary": (send_binary, "binary"),
}


def mode_events() -> dict[str, CloudEvent]:
    """One event per mode, each different, as a producer builds them."""
    return {
        "structured": order_event(id="s-1", region="eu", priority=3, urgent=True),
        "batched": order_event(id="b-1", subject=None, data=[1, "two", None, {"3": 4.5}]),
        "binary": order_event(id="x-1", datacontenttype="text/plain", data="a text"),
    }


async def emit_each_mode(key: str) -> dict[str, CloudEvent]:
    events = mode_events()
    for mode, event in events.items():
        reply = await MODES[mode][0](key, event)
        assert reply.status_code == 201, reply.content
    return events


def by_id(received: list[CloudEvent]) -> dict[str, CloudEvent]:
    return {event.get_id(): event for event in received}


async def test_websocket_consumers_get_cloudevents_of_every_mode(broker, key):
    client = await connect(key, query="format=cloudevents&types=com.example.*")
    plain = await connect(key, query="types=com.example.*")
    sent = await emit_each_mode(key)
    frames = await next_frames(client, 3)
    received = by_id([parsed(frame["event"]) for frame in frames])
    for event in sent.values():
        same_event(event, received[event.get_id()])
    assert all(frame["position"] for frame in frames)
    # the other consumer, on the same events at the same time, still gets the service's JSON
    plain_frames = await next_frames(plain, 3)
    assert [f["event"]["payload"] for f in plain_frames][2] == "a text"
    await client.disconnect()
    await plain.disconnect()


async def test_the_service_fields_come_as_extension_attributes(broker, key):
    client = await connect(key, query="format=cloudevents&types=com.example.*")
    reply = await send_structured(key, order_event(targetuserid="u-43"))
    [envelope] = reply.json()["events"]
    [frame] = await next_frames(client, 1)
    event = parsed(frame["event"])
    assert event.get_extension("eventid") == envelope["id"]
    assert event.get_extension("workspace") == "acme"
    assert event.get_extension("userid") == envelope["source"]["userId"]
    assert event.get_extension("correlationid") == reply["X-Correlation-Id"]
    assert event.get_extension("size") == envelope["size"]
    assert event.get_extension("targetuserid") == "u-43"
    assert event.get_extension("persist") is True
    await client.disconnect()


async def test_an_event_emitted_as_json_reads_as_a_cloudevent(broker, key):
    client = await connect(key, query="format=cloudevents&types=plain")
    body = json.dumps({"events": [{"type": "plain", "payload": {"a": 1}}]})
    [envelope] = (await send(key, body, "application/json")).json()["events"]
    [frame] = await next_frames(client, 1)
    event = parsed(frame["event"])
    assert event.get_id() == envelope["id"]
    assert event.get_source() == "/v2/workspaces/acme"
    assert event.get_type() == "plain"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == {"a": 1}
    assert event.get_time() == datetime.fromisoformat(envelope["createdAt"])
    await client.disconnect()


async def test_a_cloudevent_read_back_can_be_emitted_again_as_the_same_event(broker, key):
    client = await connect(key, query="format=cloudevents&types=com.example.*")
    original = order_event()
    await send_structured(key, original)
    [first] = await next_frames(client, 1)
    await send(key, json.dumps(first["event"]), "application/cloudevents+json")
    [second] = await next_frames(client, 1)
    again, before = parsed(second["event"]), parsed(first["event"])
    same_event(original, again)
    assert again.get_extension("eventid") != before.get_extension("eventid")
    await client.disconnect()


async def test_a_websocket_with_an_unknown_format_is_refused(broker, key):
    client = ws_client(query="format=xml", headers=[(b"x-api-key", key.encode())])
    connected, code = await client.connect(timeout=10)
    if connected:
        code = (await client.receive_output(timeout=5)).get("code")
    assert code == 4400


async def test_long_polls_answer_cloudevents(broker, key):
    start = await AsyncClient().get(
        URL + "/poll", {"timeout": "0", "format": "cloudevents"}, headers={"X-Api-Key": key}
    )
    cursor = start.json()["cursor"]
    sent = await emit_each_mode(key)
    received: list[CloudEvent] = []
    while len(received) < 3:
        reply = await AsyncClient().get(
            URL + "/poll",
            {"cursor": cursor, "timeout": "5", "format": "cloudevents", "types": "com.example.*"},
            headers={"X-Api-Key": key},
        )
        assert reply.status_code == 200, reply.content
        received += [parsed(event) for event in reply.json()["events"]]
        cursor = reply.json()["cursor"]
    for event in sent.values():
        same_event(event, by_id(received)[event.get_id()])


async def test_a_long_poll_with_an_unknown_format_is_refused(broker, key):
    reply = await AsyncClient().get(
        URL + "/poll", {"timeout": "0", "format": "x" * 10_000}, headers={"X-Api-Key": key}
    )
    assert reply.status_code == 400
    assert reply.json()["details"]["field"] == "format"


async def test_cloudevents_of_every_mode_are_stored_and_searchable(history, key):
    sent = await emit_each_mode(key)
    await archive_all()
    reply = await search(key, types="com.example.*", format="cloudevents", sort="asc")
    assert reply.status_code == 200, reply.content
    received = by_id([parsed(event) for event in reply.json()["result"]["events"]])
    assert set(received) == {"s-1", "b-1", "x-1"}
    for event in sent.values():
        same_event(event, received[event.get_id()])
    found = await search(key, text="text", types="com.example.*", format="cloudevents")
    assert [e["id"] for e in found.json()["result"]["events"]] == ["x-1"]
    plain = await search(key, types="com.example.*")
    assert all("payload" in e for e in plain.json()["result"]["events"])


async def test_a_search_with_an_unknown_format_is_refused(history, key):
    reply = await search(key, format="yaml")
    assert reply.status_code == 400
    assert reply.json()["details"]["field"] == "format"


# --- on a real server: the body limit, binary headers through the server -------------------


@pytest.fixture(scope="module")
def server():
    with deployment(1, server="uvicorn", EVENTS_MAX_BATCH="2", EVENTS_MAX_EVENT_BYTES="1024") as up:
        yield up


def test_a_cloudevents_body_over_the_bound_is_refused_on_a_server(server):
    bound = 2 * 1024 + 65_536
    big = json.dumps([structured_dict(data="x" * bound)]).encode()
    for content_type in ("application/cloudevents+json", BATCH):
        answer = httpx.post(
            server.http(0) + URL,
            content=big,
            headers={"X-Api-Key": server.key, "Content-Type": content_type},
        )
        assert answer.status_code == 413
        assert answer.json()["error"] == "RequestTooLarge"


def test_a_binary_cloudevent_with_encoded_headers_passes_a_server(server):
    event = order_event(subject="café/42 ünïcode", data="plain text", datacontenttype="text/plain")
    message = to_binary(event, FORMAT)
    answer = httpx.post(
        server.http(0) + URL,
        content=message.body,
        headers={"X-Api-Key": server.key, **message.headers},
    )
    assert answer.status_code == 201, answer.text
    [envelope] = answer.json()["events"]
    assert envelope["cloudevent"]["subject"] == "café/42 ünïcode"
    assert envelope["payload"] == "plain text"


async def test_an_event_stream_sends_cloudevents(server):
    headers = {"X-Api-Key": server.key}
    sent = mode_events()
    async with sse_stream(server.http(0), "format=cloudevents&types=com.example.*", headers) as r:
        assert r.status_code == 200
        reader = Reader(r)
        await reader.next()  # the stream's first message (retry:): it has joined the hub
        async with httpx.AsyncClient() as client:
            for event in sent.values():
                reply = await client.post(
                    server.http(0) + URL,
                    content=FORMAT.write(event),
                    headers={**headers, "Content-Type": "application/cloudevents+json"},
                )
                assert reply.status_code == 201, reply.text
        messages = await reader.events(3)
    assert all(message.id for message in messages)
    received = by_id([parsed(message.data) for message in messages])
    for event in sent.values():
        same_event(event, received[event.get_id()])


def test_an_event_stream_with_an_unknown_format_is_refused(server):
    answer = httpx.get(
        server.http(0) + URL + "/stream?format=atom", headers={"X-Api-Key": server.key}
    )
    assert answer.status_code == 400
    assert answer.json()["details"]["field"] == "format"


async def test_a_websocket_on_a_server_gets_cloudevents_written_straight_to_its_socket(server):
    url = server.ws(0, "format=cloudevents&types=com.example.*")
    async with websockets.connect(url, additional_headers={"X-Api-Key": server.key}) as socket:
        await socket.send(json.dumps({"op": "ping"}))
        assert json.loads(await socket.recv()) == {"op": "pong"}  # subscribed: it answers
        sent = order_event(id="direct-1")
        async with httpx.AsyncClient() as client:
            reply = await client.post(
                server.http(0) + URL,
                content=FORMAT.write(sent),
                headers={"X-Api-Key": server.key, "Content-Type": "application/cloudevents+json"},
            )
            assert reply.status_code == 201, reply.text
            frame = json.loads(await socket.recv())
            metrics = (await client.get(server.http(0) + "/metrics")).text
    assert frame["op"] == "event"
    same_event(sent, parsed(frame["event"]))
    assert 'events_websocket_opened_total{writes="uvicorn"} 1.0' in metrics


async def test_binary_mode_carries_persist_and_target_as_headers(broker, key):
    client = await connect(key, query="format=cloudevents&types=com.example.*")
    event = order_event(id="live-only", persist=False, targetsessionid="s-10")
    reply = await send_binary(key, event)
    assert reply.status_code == 201, reply.content
    [envelope] = reply.json()["events"]
    assert envelope["options"] == {"persist": False}
    assert envelope["target"] == {"sessionId": "s-10"}
    [frame] = await next_frames(client, 1)
    received = parsed(frame["event"])
    assert received.get_extension("persist") is False
    assert received.get_extension("targetsessionid") == "s-10"
    await client.disconnect()


async def test_error_events_read_as_cloudevents_with_their_error(broker, key):
    client = await connect(key, query="format=cloudevents&types=error")
    await publish(
        "acme",
        [{"type": "error", "payload": None, "options": {"persist": True}}],
        caller=None,
        context=RequestContext(correlation_id="c-1", transport="http"),
        error={"error": "InternalError", "message": "Internal error", "level": "error"},
    )
    [frame] = await next_frames(client, 1)
    event = parsed(frame["event"])
    assert event.get_type() == "error"
    assert event.get_extension("error") == "InternalError"
    assert event.get_extension("errormessage") == "Internal error"
    assert event.get_extension("errorlevel") == "error"
    assert event.get_extension("correlationid") == "c-1"
    assert "data" not in frame["event"]
    await client.disconnect()


async def test_the_asyncapi_document_describes_the_cloudevents_frames_and_messages(broker, key):
    document = await served_document()
    client = await connect(key, query="format=cloudevents&types=com.example.*")
    await emit_each_mode(key)
    for frame in await next_frames(client, 3):
        assert describe(document, "events", frame) == "event"
        assert describe(document, "stream", frame["event"]) == "streamEvent"
    await client.disconnect()
