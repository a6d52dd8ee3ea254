"""A realtime connection without Channels (events/realtime/connection.py), on both brokers.

The connection talks to its transport through its own small port (``Transport``):
here a plain object that records the frames and the closes, over the real hub and
the real broker. The same behaviour through a WebSocket is in test_websocket.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from django.test import override_settings

from events.event import parse_client_event
from events.realtime.connection import Connection
from events.realtime.publishing import publish
from kernel.caller import Caller
from kernel.context import RequestContext
from kernel.errors import NotAuthenticated

CALLER = Caller.for_api_key("acme", "tests", frozenset({"consume", "emit"}))
CONTEXT = RequestContext(correlation_id="connection-test", transport="websocket", ip=None)
WITHIN_SECS = 10  # a bound for a failure, not a timing
NESTING = 100_000


class Recorder:
    """A transport that keeps what the connection sends; ``stuck`` sends never return."""

    def __init__(self, *, stuck: bool = False) -> None:
        self.accepted = False
        self.frames: list[dict[str, Any]] = []
        self.closes: list[int] = []
        self.stuck = stuck

    async def accept(self) -> None:
        self.accepted = True

    async def send(self, text: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.frames.append(orjson.loads(text))

    async def close(self, code: int, reason: str) -> None:
        self.closes.append(code)

    def direct_socket(self) -> None:
        return None

    def of(self, op: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame["op"] == op]


async def until(condition: Callable[[], Any]) -> None:
    """Poll until ``condition()`` holds (the connection's work runs in its own tasks)."""
    async with asyncio.timeout(WITHIN_SECS):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the state itself
            await asyncio.sleep(0.01)


async def authenticated() -> Caller:
    return CALLER


async def opened(
    transport: Recorder,
    filters: dict[str, Any] | None = None,
    last_event_id: str | None = None,
    authenticate: Any = authenticated,
) -> Connection:
    connection = Connection("acme", transport, context=CONTEXT)
    await connection.open(CALLER, filters or {}, last_event_id, authenticate=authenticate)
    return connection


async def emitted(*types: str) -> list[dict[str, Any]]:
    events = [parse_client_event({"type": t}) for t in types]
    return await publish("acme", events, caller=CALLER, context=CONTEXT)


async def test_it_opens_with_filters_and_sends_what_follows_last_event_id(broker):
    first, *kept = await emitted("tick", "tick", "tock", "tick")
    transport = Recorder()
    connection = await opened(transport, {"types": ["tick"]}, first["id"])
    [live] = await emitted("tick")
    await until(lambda: len(transport.of("event")) == 3)
    got = [frame["event"]["id"] for frame in transport.of("event")]
    assert got == [kept[0]["id"], kept[2]["id"], live["id"]]
    assert transport.accepted
    assert not transport.closes
    await connection.disconnect(1000)


async def test_a_handshake_with_a_bad_cursor_is_refused_with_4400(broker):
    transport = Recorder()
    connection = Connection("acme", transport, context=CONTEXT)
    try:
        await connection.open(CALLER, {}, "not-a-cursor", authenticate=authenticated)
    except Exception as exc:
        await connection.refuse(exc)
    assert transport.closes == [4400]


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("{not json", "ValidationError"),
        ("[" * NESTING + "]" * NESTING, "ValidationError"),
        ('{"op": "ping", "deep": ' + "[" * NESTING + "]" * NESTING + "}", "ValidationError"),
        ('["ping"]', "ValidationError"),
        ('{"op": "dance"}', "ValidationError"),
        ('{"op": "subscribe", "filters": {"types": "' + "a," * 100_000 + '"}}', "ValidationError"),
    ],
    ids=["malformed", "deeply-nested", "nested-inside", "not-an-object", "unknown-op", "huge"],
)
async def test_a_bad_frame_gets_an_error_frame_and_the_connection_goes_on(broker, frame, error):
    transport = Recorder()
    connection = await opened(transport)
    await connection.receive(frame)
    [answer] = transport.of("error")
    assert answer["error"] == error
    assert set(answer) >= {"op", "ref", "error", "message"}
    await connection.receive('{"op": "ping"}')
    assert transport.of("pong") == [{"op": "pong"}]
    assert not transport.closes
    await connection.disconnect(1000)


async def test_a_huge_emit_is_refused_by_its_ref_and_the_connection_goes_on(broker):
    transport = Recorder()
    connection = await opened(transport)
    huge = {"op": "emit", "ref": "huge", "event": {"type": "big", "payload": "x" * 2_000_000}}
    await connection.receive(orjson.dumps(huge))
    await until(lambda: transport.of("error"))
    [answer] = transport.of("error")
    assert (answer["ref"], answer["error"]) == ("huge", "EventTooLarge")
    assert not transport.closes
    await connection.disconnect(1000)


async def test_emits_are_answered_in_their_order(broker):
    transport = Recorder()
    connection = await opened(transport, {"types": ["none"]})
    for n in range(30):
        frame = {"op": "emit", "ref": n, "event": {"type": "said", "payload": n}}
        await connection.receive(orjson.dumps(frame))
    await until(lambda: len(transport.of("ack")) == 30)
    acks = transport.of("ack")
    assert [ack["ref"] for ack in acks] == list(range(30))
    assert [ack["event"]["payload"] for ack in acks] == list(range(30))
    ids = [ack["event"]["id"] for ack in acks]
    assert ids == sorted(ids)
    await connection.disconnect(1000)


@override_settings(EVENTS_WS_RECHECK_SECS=0.05)
async def test_a_failed_recheck_closes_with_4401(broker):
    revoked = asyncio.Event()

    async def authenticate() -> Caller:
        if revoked.is_set():
            raise NotAuthenticated("the API key was revoked")
        return CALLER

    transport = Recorder()
    connection = await opened(transport, authenticate=authenticate)
    revoked.set()
    await until(lambda: transport.closes)
    assert transport.closes == [4401]
    await connection.disconnect(4401)


@override_settings(EVENTS_WS_RECHECK_SECS=0.05)
async def test_a_consumer_that_lost_its_consume_right_is_closed_with_4403(broker):
    async def emit_only() -> Caller:
        return Caller.for_api_key("acme", "tests", frozenset({"emit"}))

    transport = Recorder()
    connection = await opened(transport, authenticate=emit_only)
    await until(lambda: transport.closes)
    assert transport.closes == [4403]
    await connection.disconnect(4403)


@override_settings(EVENTS_WS_OUTBOX_MAX=5)
async def test_a_slow_consumer_is_cut_off_with_4008(broker):
    transport = Recorder(stuck=True)
    connection = await opened(transport)
    for _ in range(4):
        await emitted(*["flood"] * 5)
    await until(lambda: transport.closes)
    assert transport.closes == [4008]
    await connection.disconnect(4008)


class Unread:
    """A client socket (``DirectSocket``) whose client reads nothing."""

    server = "test"

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.held_close = 0.0

    def write(self, data: bytes) -> bool:
        self.written.append(data)
        return True

    def buffered(self) -> int:
        return sum(map(len, self.written))

    def abort(self) -> None:
        """Nothing to drop."""

    def hold_close(self, seconds: float) -> None:
        self.held_close = seconds

    def close_now(self, code: int) -> None:
        """Not at a stop."""


class Direct(Recorder):
    """A transport whose server lets the connection write to the socket itself."""

    def __init__(self) -> None:
        super().__init__()
        self.socket = Unread()

    def direct_socket(self) -> Unread:  # type: ignore[override]
        return self.socket


@override_settings(EVENTS_WS_BUFFER_MAX_BYTES=2_000)
async def test_a_socket_that_takes_no_more_bytes_is_cut_off_with_4008(broker):
    transport = Direct()
    connection = await opened(transport)
    await connection.receive('{"op": "ping"}')
    assert transport.socket.written[0].endswith(b'{"op":"pong"}')  # straight to the socket
    for _ in range(10):
        await emitted(*["flood"] * 5)
        if transport.closes:
            break
    await until(lambda: transport.closes)
    assert transport.closes == [4008]
    assert transport.socket.held_close > 0  # the client gets a while to read up to the close
    await connection.disconnect(4008)
