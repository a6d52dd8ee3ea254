"""WebSocket: the contract's section 3, on both brokers."""

from __future__ import annotations

import pytest

from tests.helpers import connect, next_frames, no_frame, ws_client

# With EVENTS_DIRECT_WRITES off, too: Channels' session wrapper and ORM clean-up are in the path.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("direct_writes")]


async def test_it_delivers_an_emitted_event_to_a_subscriber(broker, key):
    subscriber = await connect(key)
    emitter = await connect(key)
    await emitter.send_json_to(
        {"op": "emit", "ref": "r1", "event": {"type": "orders.created", "payload": {"n": 1}}}
    )
    [ack] = await next_frames(emitter, 1, op="ack")
    assert ack["ref"] == "r1"
    [frame] = await next_frames(subscriber, 1, types={"orders.created"})
    assert frame["event"] == ack["event"]
    assert frame["event"]["source"]["userId"].startswith("apikey:")
    await subscriber.disconnect()
    await emitter.disconnect()


async def test_it_answers_ping_with_pong(broker, key):
    client = await connect(key)
    await client.send_json_to({"op": "ping"})
    assert await next_frames(client, 1, op="pong")
    await client.disconnect()


async def test_it_keeps_the_connection_after_a_bad_frame(broker, key):
    client = await connect(key)
    await client.send_to(text_data="{not json")
    [error] = await next_frames(client, 1, op="error")
    assert error["error"] == "ValidationError"
    await client.send_json_to({"op": "dance", "ref": 7})
    [error] = await next_frames(client, 1, op="error")
    assert error["ref"] == 7
    assert "unknown op" in error["message"]
    await client.send_json_to({"op": "emit", "ref": "x", "event": {"type": "bad/type"}})
    [error] = await next_frames(client, 1, op="error")
    assert error["ref"] == "x"
    assert error["details"]["field"] == "type"
    await client.send_json_to({"op": "ping"})
    assert await next_frames(client, 1, op="pong")
    await client.disconnect()


async def test_it_filters_by_type_wildcards(broker, key):
    subscriber = await connect(key, query="types=orders.*")
    emitter = await connect(key)
    for event_type in ("users.created", "orders.created"):
        await emitter.send_json_to({"op": "emit", "event": {"type": event_type}})
    [frame] = await next_frames(subscriber, 1, types={"orders.created", "users.created"})
    assert frame["event"]["type"] == "orders.created"
    await subscriber.disconnect()
    await emitter.disconnect()


async def test_it_resumes_after_last_event_id_without_gap_or_repeat(broker, key):
    emitter = await connect(key)
    ids = []
    for n in range(5):
        await emitter.send_json_to({"op": "emit", "event": {"type": "tick", "payload": n}})
        [ack] = await next_frames(emitter, 1, op="ack")
        ids.append(ack["event"]["id"])
    resumed = await connect(key, query=f"types=tick&lastEventId={ids[1]}")
    await emitter.send_json_to({"op": "emit", "event": {"type": "tick", "payload": 5}})
    frames = await next_frames(resumed, 4, types={"tick"})
    assert [f["event"]["payload"] for f in frames] == [2, 3, 4, 5]
    assert await no_frame(resumed, types={"tick"})
    await resumed.disconnect()
    await emitter.disconnect()


async def test_it_refuses_a_handshake_without_credentials(broker, workspace):
    client = ws_client()
    connected, _ = await client.connect(timeout=10)
    assert connected
    closed = await client.receive_output(timeout=10)
    assert closed["type"] == "websocket.close"
    assert closed["code"] == 4401


async def test_an_unexpected_failure_at_connect_closes_with_1011_and_emits_an_error_event(
    broker, key, monkeypatch
):
    import events.realtime.hub

    async def broken_join(*args, **kwargs):
        raise RuntimeError("injected")

    watcher = await connect(key, query="types=error")
    monkeypatch.setattr(events.realtime.hub.Hub, "join", broken_join)
    client = ws_client(headers=[(b"x-api-key", key.encode())])
    await client.connect(timeout=10)  # the defaults (1 s, 2 s) failed on a loaded CI machine
    closed = await client.receive_output(timeout=10)
    assert closed["type"] == "websocket.close"
    assert closed["code"] == 1011
    monkeypatch.undo()
    [frame] = await next_frames(watcher, 1, types={"error"})
    assert frame["event"]["error"]["error"] == "InternalError"
    assert frame["event"]["payload"] == {"where": "websocket connect"}
    await watcher.disconnect()
