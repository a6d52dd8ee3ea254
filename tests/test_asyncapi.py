"""The AsyncAPI document (``/v2/asyncapi.json``) describes what the service really sends.

Every frame a real session receives (event, ack, error, pong, on the WebSocket; each
message of the event stream) is validated against the document's message schemas, as
served; a frame the document does not describe fails. The client frames' schemas and the
service agree on what is refused. The AsyncAPI parser itself runs in the ``asyncapi``
gate of ``scripts/test``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import AsyncClient
from jsonschema import Draft7Validator

from adapters.asyncapi import document
from adapters.websocket.consumer import TRANSPORT_PARAMS
from events.realtime import connection, lifecycle, protocol
from events.realtime.recheck import check_workspace_now
from tests.helpers import connect, next_frames, ws_client
from tests.sse_client import Message
from tests.test_longpoll import emit
from workspaces.authcache import forget_all
from workspaces.keys import create_api_key, revoke_api_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("broker")]


NOTHING = "types=nothing.ever"  # a connection that receives no event, only its answers


PROBE_PONG = {"op": "pong"}


class Undescribed(AssertionError):
    """A frame that no message of the channel describes."""


async def served_document() -> dict[str, Any]:
    response = await AsyncClient().get("/v2/asyncapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return response.json()


def received_messages(document: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    """The messages a client receives on ``channel``: of its receive operations and replies."""
    found: list[str] = []
    for operation in document["operations"].values():
        if operation["channel"]["$ref"] != f"#/channels/{channel}":
            continue
        refs = operation["messages"] if operation["action"] == "receive" else []
        refs = refs + operation.get("reply", {}).get("messages", [])
        found += [ref["$ref"].rsplit("/", 1)[-1] for ref in refs]
    messages = document["components"]["messages"]
    return [messages[name] for name in dict.fromkeys(found)]


def describe(document: dict[str, Any], channel: str, frame: Any) -> str:
    """The name of the message that describes ``frame``, or Undescribed."""
    for message in received_messages(document, channel):
        if Draft7Validator(message["payload"]).is_valid(frame):
            return message["name"]
    raise Undescribed(f"no message of {channel!r} describes {json.dumps(frame)[:300]}")


async def test_every_kind_of_websocket_frame_the_service_sends_is_described(key):
    document = await served_document()
    subscriber = await connect(key, query="types=tick")
    emitter = await connect(key, query=NOTHING)
    sent = [
        {"op": "emit", "ref": "r1", "event": {"type": "tick", "payload": {"n": 1}}},
        {"op": "emit", "ref": 2, "idempotencyKey": "k-1", "event": {"type": "tick"}},
        {"op": "emit", "ref": {"any": "json"}, "event": {"type": "bad/type"}},
        {"op": "dance", "ref": None},
        {"op": "subscribe", "ref": "s", "filters": {"nope": "x"}},
        {"op": "ping"},
    ]
    for frame in sent:
        await emitter.send_json_to(frame)
    await emitter.send_to(text_data="{not json")
    answers = [await emitter.receive_json_from(timeout=5) for _ in range(len(sent) + 1)]
    events = await next_frames(subscriber, 2, types={"tick"})
    await subscriber.send_json_to({"op": "subscribe", "filters": {"types": "tock"}})
    await subscriber.send_json_to({"op": "ping", "ref": 1})
    answers.append(await subscriber.receive_json_from(timeout=5))
    names = sorted(describe(document, "events", frame) for frame in answers + events)
    # Every kind, and as many as sent (an idempotent emit may be answered after the others).
    assert names == ["ack"] * 2 + ["error"] * 4 + ["event"] * 2 + ["pong"] * 2
    assert all("position" in frame for frame in events)
    await subscriber.disconnect()
    await emitter.disconnect()


async def test_a_frame_the_document_does_not_describe_fails(key):
    document = await served_document()
    [event] = await emit(key, {"type": "tick"})
    assert describe(document, "events", {"op": "event", "event": event}) == "event"
    for made_up in (
        {"op": "hello"},
        {"op": "pong", "ref": 1},
        {"op": "event", "event": event, "cursor": "x"},
        {"op": "ack", "event": event},
        {"op": "error", "ref": None, "error": "ValidationError"},
        {"op": "event", "event": {**event, "size": "big"}},
        ["op", "event"],
    ):
        with pytest.raises(Undescribed):
            describe(document, "events", made_up)


async def answers_until_pong(client: Any) -> list[dict[str, Any]]:
    """The answers to a frame followed by a probe ping (an accepted subscribe has none)."""
    answers = []
    while (answer := await client.receive_json_from(timeout=5)) != PROBE_PONG:
        answers.append(answer)
    return answers


def service_refuses(answer: dict[str, Any]) -> bool:
    return answer["op"] == "error"


def schema_refuses(frame: dict[str, Any]) -> bool:
    """Refused by the document: no client message of the WebSocket describes it."""
    return not any(
        Draft7Validator(schema).is_valid(frame) for _, schema in protocol.CLIENT_FRAMES.values()
    )


CLIENT_FRAMES = [
    {"op": "ping"},
    {"op": "ping", "ref": [1, 2]},
    {"op": "pong"},
    {"op": 3},
    {"ref": 1},
    {"op": "emit", "event": {"type": "a.b"}},
    {"op": "emit", "event": {"type": "a b_c-d.e", "payload": [1], "options": {"persist": False}}},
    {"op": "emit", "event": {"type": "x" * 129}},
    {"op": "emit", "event": {"type": ""}},
    {"op": "emit", "event": {"type": "a/b"}},
    {"op": "emit", "event": {"payload": 1}},
    {"op": "emit", "event": "tick"},
    {"op": "emit"},
    {"op": "emit", "event": {"type": "t", "target": {"userId": "u"}}},
    {"op": "emit", "event": {"type": "t", "target": {"userId": ""}}},
    {"op": "emit", "event": {"type": "t", "target": {"user": "u"}}},
    {"op": "emit", "event": {"type": "t", "options": {"persist": "no"}}},
    {"op": "emit", "event": {"type": "t", "options": []}},
    {"op": "emit", "event": {"type": "t"}, "idempotencyKey": "a-b_c"},
    {"op": "emit", "event": {"type": "t"}, "idempotencyKey": "has space"},
    {"op": "emit", "event": {"type": "t"}, "idempotencyKey": ""},
    {"op": "emit", "event": {"type": "t"}, "idempotencyKey": "k" * 256},
    {"op": "emit", "event": {"type": "t"}, "idempotencyKey": 5},
    {"op": "subscribe", "filters": {"types": "a.*,b", "text": ["x y"]}},
    {"op": "subscribe", "filters": {"payload.orderId": ["1", 2, True]}},
    {"op": "subscribe", "filters": {}},
    {"op": "subscribe"},
    {"op": "subscribe", "filters": {"unknown": "x"}},
    {"op": "subscribe", "filters": {"payload.a": {"deep": 1}}},
    {"op": "subscribe", "filters": {"types": ["a"] * 51}},
    {"op": "subscribe", "filters": {"types": "x" * 257}},
    {"op": "subscribe", "filters": {f"payload.k{n}": "v" for n in range(10)}},
    {"op": "subscribe", "filters": {f"payload.k{n}": "v" for n in range(11)}},
    {"op": "subscribe", "filters": {"types": "a", **{f"payload.k{n}": "v" for n in range(10)}}},
    {"op": "subscribe", "filters": {"types": "a", **{f"payload.k{n}": "v" for n in range(11)}}},
    {"op": "subscribe", "filters": "types=a"},
]


async def test_the_client_frames_schemas_refuse_what_the_service_refuses(key):
    client = await connect(key, query=NOTHING)
    disagreements = []
    for frame in CLIENT_FRAMES:
        await client.send_json_to(frame)
        await client.send_json_to({"op": "ping", "ref": "probe"})
        answers = await answers_until_pong(client)
        if frame.get("op") == "ping" and not answers:  # its own pong came first: the probe's
            answers = await answers_until_pong(client)
        if any(map(service_refuses, answers)) != schema_refuses(frame):
            disagreements.append((frame, answers))
    assert disagreements == []
    await client.disconnect()


async def test_every_message_of_the_event_stream_is_described(workspace):
    document = await served_document()
    api_key, secret = await sync_to_async(create_api_key)("acme", ["consume", "emit"])
    response = await AsyncClient().get(
        "/v2/workspaces/acme/events/stream", {"types": "tick"}, headers={"X-Api-Key": secret}
    )
    chunks = aiter(response.streaming_content)
    assert (await anext(chunks)).startswith(b"retry: ")
    await emit(secret, {"type": "tick", "payload": {"n": 1}})
    event = parse_message(await anext(chunks))
    await sync_to_async(revoke_api_key)(api_key)
    forget_all()
    assert check_workspace_now({"workspace": "acme"}) >= 1
    error = parse_message(await anext(chunks))
    assert describe(document, "stream", event.json()) == "streamEvent"
    assert event.id
    assert Draft7Validator(protocol.POSITION).is_valid(event.id)
    assert (error.event, describe(document, "stream", error.json())) == ("error", "streamError")
    with pytest.raises(Undescribed):
        describe(document, "stream", {"op": "event", "event": event.json()})


def parse_message(chunk: bytes) -> Message:
    fields: dict[str, str] = {}
    for line in chunk.decode().strip("\n").split("\n"):
        name, _, value = line.partition(": ")
        fields[name] = value
    return Message(**fields)


async def test_the_close_codes_the_service_sends_are_in_the_document(key):
    document = await served_document()
    listed = {close["code"] for close in document["channels"]["events"]["x-close-codes"]}
    sent = {
        connection.CLOSE_BAD_REQUEST,
        connection.CLOSE_SLOW_CONSUMER,
        connection.CLOSE_INTERNAL_ERROR,
        connection.CLOSE_TRY_AGAIN_LATER,
        lifecycle.GOING_AWAY,
        *connection.CLOSE_CODES.values(),
    }
    assert listed == sent
    for query, code in (("types=a&nope=1", 4400), ("", 4401)):
        client = ws_client(
            query=query, headers=[] if code == 4401 else [(b"x-api-key", key.encode())]
        )
        await client.connect(timeout=10)
        closed = await client.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": code, "reason": closed["reason"]}
        assert code in listed


async def test_the_handshake_parameters_and_the_page(key):
    document = await served_document()
    query = document["channels"]["events"]["bindings"]["ws"]["query"]["properties"]
    assert set(TRANSPORT_PARAMS) <= set(query)
    assert set(protocol.CLIENT_FRAMES) == {"subscribe", "emit", "ping"}
    page = await AsyncClient().get("/v2/protocol")
    assert page.status_code == 200
    html = page.content.decode()
    for needle in ("/v2/workspaces/{workspaceId}/events/stream", "4410", "idempotencyKey"):
        assert needle in html
    landing = (await AsyncClient().get("/")).content.decode()
    assert 'href="/v2/protocol"' in landing
    assert 'href="/v2/asyncapi.json"' in landing


async def test_the_document_and_its_page_are_read_only():
    for path in ("/v2/asyncapi.json", "/v2/protocol"):
        for body in ("x" * 100_000, '{"a": ' * 5_000, "\x00\xff"):
            response = await AsyncClient().post(path, body, content_type="application/json")
            assert response.status_code == 405
            assert response.json()["error"] == "MethodNotAllowed"
        huge_query = await AsyncClient().get(path, {"q": "[" * 3_000, "x": "y" * 3_000})
        assert huge_query.status_code == 200


async def test_the_served_documents_servers_are_the_host_the_client_asked():
    served = await served_document()
    assert {server["host"] for server in served["servers"].values()} == {"testserver"}
    assert {k: v for k, v in served.items() if k != "servers"} == json.loads(
        json.dumps({k: v for k, v in document().items() if k != "servers"})
    )
    secure = await AsyncClient().get("/v2/asyncapi.json", secure=True)
    protocols = {name: s["protocol"] for name, s in secure.json()["servers"].items()}
    assert protocols == {"websocket": "wss", "http": "https"}


def test_manage_py_asyncapi_writes_the_document(tmp_path, capsys):
    target = tmp_path / "asyncapi.json"
    call_command("asyncapi", output=str(target))
    call_command("asyncapi")
    assert json.loads(target.read_text()) == json.loads(capsys.readouterr().out) == document()
