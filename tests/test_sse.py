"""Server-Sent Events: ``GET /v2/workspaces/{workspaceId}/events/stream`` (issue 14).

Real servers on loopback ports (uvicorn and Daphne, on the embedded broker and on
Redis) and an HTTP client reading the stream as the HTML standard parses it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REDIS_TEST_URL, flush_redis
from tests.servers import SERVERS, Deployment, deployment, manage
from tests.sse_client import Reader, stream
from tests.test_scaled import emit

COMBINATIONS = [
    ("uvicorn", "memory"),
    ("uvicorn", "redis"),
    ("daphne", "memory"),
    ("daphne", "redis"),
]
STREAM = "/v2/workspaces/acme/events/stream"


@pytest.fixture(scope="module", params=COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def running(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Deployment]:
    """One service process of each server on each broker, with a heartbeat each second."""
    server, broker = request.param
    redis_url = REDIS_TEST_URL if broker == "redis" else ""
    if redis_url:
        flush_redis()
    output = tmp_path_factory.mktemp("sse") / "server.log"
    with deployment(
        1,
        server=server,
        output=output,
        REDIS_URL=redis_url,
        EVENTS_SSE_HEARTBEAT_SECS="1",
        EVENTS_SSE_RETRY_MS="500",
        EVENTS_WS_RECHECK_SECS="1",  # without Redis, only the periodic re-check tells it
    ) as started:
        yield started
    if redis_url:
        flush_redis()


def kind() -> str:
    """An event type no other test emits."""
    return f"t{uuid.uuid4().hex[:10]}"


def keyed(running: Deployment) -> dict[str, str]:
    return {"X-Api-Key": running.key}


async def opened(response: httpx.Response, retry: int = 500) -> Reader:
    """The stream's reader once the service has joined it to the hub (its ``retry:`` came)."""
    assert response.status_code == 200, await response.aread()
    reader = Reader(response)
    first = await reader.next()
    assert first is not None
    assert first.retry == retry
    return reader


async def test_it_streams_the_matching_events_with_their_positions_as_ids(running):
    wanted = kind()
    async with stream(running.http(0), f"types={wanted}.*", keyed(running)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        reader = await opened(response)
        sent = await emit(
            running,
            0,
            {"type": "unwanted"},
            {"type": f"{wanted}.created", "payload": {"n": 1}},
            {"type": f"{wanted}.paid", "payload": {"n": 2}},
        )
        got = await reader.events(2)
    assert [m.json() for m in got] == sent[1:]
    assert all(m.event == "message" for m in got)
    for message, event in zip(got, sent[1:], strict=True):
        epoch, _, event_id = message.id.rpartition(":")
        assert epoch
        assert event_id == event["id"]


async def test_a_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(running):
    wanted = kind()
    start = await emit(running, 0, {"type": "marker"})
    sent = await emit(running, 0, *[{"type": wanted, "payload": n} for n in range(7)])
    query = f"types={wanted}&lastEventId={start[0]['id']}"
    async with stream(running.http(0), query, keyed(running)) as response:
        first = await (await opened(response)).events(3)
    sent += await emit(running, 0, *[{"type": wanted, "payload": n} for n in range(7, 10)])
    headers = {**keyed(running), "Last-Event-ID": first[-1].id}
    # The header is what an EventSource sends on reconnect: it wins over the query's.
    async with stream(running.http(0), query, headers) as response:
        second = await (await opened(response)).events(7)
    assert [m.json()["id"] for m in first + second] == [e["id"] for e in sent]


async def test_a_position_outside_the_stream_ends_it_with_an_error_message(running):
    for position, fragment in [
        ("an0ther3poch:1-0", "reset"),
        ("9999999999999999-0000000000", "ahead"),
    ]:
        headers = {**keyed(running), "Last-Event-ID": position}
        async with stream(running.http(0), "types=x", headers) as response:
            assert response.status_code == 200
            messages = await (await opened(response)).rest()  # then the server ends it
        [error] = messages
        assert error.event == "error"
        assert error.json()["error"] == "CursorExpired"
        assert fragment in error.json()["message"]


async def test_an_idle_stream_gets_a_heartbeat_comment(running):
    async with stream(running.http(0), "types=nothing.ever", keyed(running)) as response:
        reader = await opened(response)
        message = await reader.next()
    assert message is not None
    assert message.comment == "ping"


@pytest.mark.parametrize(
    ("headers", "workspace_id", "status", "code"),
    [
        ({}, "acme", 401, "NotAuthenticated"),
        ({"X-Api-Key": "evk_0123456789ab_wrong"}, "acme", 401, "NotAuthenticated"),
        ("key", "nowhere", 404, "WorkspaceNotFound"),
        ("emit-only", "acme", 403, "PermissionDenied"),
    ],
)
async def test_a_refusal_comes_before_the_stream_in_the_contracts_shape(
    running, headers, workspace_id, status, code
):
    if headers == "key":
        headers = keyed(running)
    elif headers == "emit-only":
        emitter = manage(running.env, "createapikey", "acme", "--name", "e", "--scopes", "emit")
        headers = {"X-Api-Key": emitter}
    async with stream(running.http(0), "", headers, workspace_id) as response:
        body = json.loads(await response.aread())
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert body["error"] == code
    assert body["message"]


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ("types=" + "a" * 10_000, {}, "query"),
        ("types=" + ",".join(["x"] * 60), {}, "types"),
        ("payload." + ".".join("abcdefghij") + "=1", {}, "payload"),
        ("types=" + "*a" * 20, {}, "types"),
        ("colour=red", {}, "colour"),
        ("lastEventId=yesterday", {}, "lastEventId"),
        ("lastEventId=" + "1" * 10_000, {}, "query"),
        ("", {"Last-Event-ID": "yesterday"}, "Last-Event-ID"),
        ("", {"Last-Event-ID": "0" * 5000}, "Last-Event-ID"),
        ("", {"Last-Event-ID": "an epoch!:1-0"}, "Last-Event-ID"),
        ("", {"Last-Event-ID": "e:p:1-0"}, "Last-Event-ID"),
    ],
)
async def test_hostile_filters_and_positions_get_a_400(running, query, headers, field):
    async with stream(running.http(0), query, {**keyed(running), **headers}) as response:
        body = json.loads(await response.aread())
    assert response.status_code == 400, body
    assert body["error"] == "ValidationError"
    assert body["details"]["field"].startswith(field)


async def test_query_string_credentials_open_the_stream_as_headers_do(running, make_token):
    wanted = kind()
    token = make_token("u-1", "viewer")
    for credential in (f"apiKey={running.key}", f"token={token}"):
        async with stream(running.http(0), f"{credential}&types={wanted}") as response:
            reader = await opened(response)
            sent = await emit(running, 0, {"type": wanted})
            [got] = await reader.events(1)
        assert got.json() == sent[0]


async def test_it_counts_sse_clients_and_deliveries_in_the_metrics(running):
    wanted = kind()
    async with (
        httpx.AsyncClient(base_url=running.http(0)) as client,
        stream(running.http(0), f"types={wanted}", keyed(running)) as response,
    ):
        reader = await opened(response)
        await emit(running, 0, {"type": wanted})
        await reader.events(1)
        metrics = (await client.get("/metrics")).text
    assert 'events_connected_clients{transport="sse"} 1.0' in metrics
    assert 'events_delivered_total{transport="sse"}' in metrics


async def test_the_schema_describes_the_stream(running):
    async with httpx.AsyncClient(base_url=running.http(0)) as client:
        schema = (await client.get("/v2/schema", params={"format": "json"})).json()
    operation = schema["paths"]["/v2/workspaces/{workspace_id}/events/stream"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"lastEventId", "Last-Event-ID", "types", "token", "apiKey"} <= names


async def test_a_revoked_key_ends_its_open_stream_with_an_error_message(running):
    doomed = manage(running.env, "createapikey", "acme", "--name", f"doomed-{kind()}")
    async with stream(running.http(0), "types=nothing.ever", {"X-Api-Key": doomed}) as response:
        reader = await opened(response)
        await asyncio.to_thread(manage, running.env, "revokeapikey", doomed.split("_")[1])
        messages = [m for m in await reader.rest() if m.comment is None]
    [error] = messages
    assert error.event == "error"
    assert error.json()["error"] == "NotAuthenticated"
    assert "revoked" in error.json()["message"]


async def test_opening_and_closing_a_stream_is_audited(running):
    wanted = kind()
    audits = "types=events.subscribed,events.unsubscribed"
    async with stream(running.http(0), audits, keyed(running)) as observer:
        watching = await opened(observer)
        async with stream(running.http(0), f"types={wanted}", keyed(running)) as response:
            await opened(response)
        seen: list[dict] = []
        while not any(e["type"] == "events.unsubscribed" for e in seen):
            [message] = await watching.events(1)
            event = message.json()
            if event["type"] == "events.unsubscribed" or event["payload"]["filters"].get(
                "types"
            ) == [wanted]:
                seen.append(event)
    assert [e["type"] for e in seen] == ["events.subscribed", "events.unsubscribed"]
    assert all(e["source"]["correlationId"] for e in seen)


async def test_query_string_credentials_never_reach_the_servers_output(running, make_token):
    token = make_token("u-1", "viewer")
    refused = "evk_0123456789ab_not-a-real-key-but-a-secret-all-the-same"
    for credential in (f"apiKey={running.key}", f"token={token}"):
        async with stream(running.http(0), f"{credential}&types=x") as response:
            await opened(response)
    async with stream(running.http(0), f"apiKey={refused}") as response:
        assert response.status_code == 401
    assert running.output is not None
    logged = running.output.read_text()
    assert "/events/stream" in logged  # the lines are there, their secrets not
    for secret in (running.key, token, refused, running.key.split("_", 2)[2]):
        assert secret not in logged


# --- A client that stops reading ------------------------------------------------------

EVENT_PAD_BYTES = 8_000
BATCH = 50
BATCHES = 60  # more than the bounds below plus what the kernel's buffers hold


@pytest.fixture(params=sorted(SERVERS))
def small_bounds(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    """One process of each server whose streams hold little for a slow client."""
    with deployment(
        1,
        server=request.param,
        REDIS_URL="",
        EVENTS_SSE_OUTBOX_MAX="100",
        EVENTS_SSE_BUFFER_MAX_BYTES=str(256 * 1024),
    ) as started:
        yield started


async def emit_until_cut_off(running: Deployment) -> None:
    """Emit big events until the service counts a slow consumer (at most BATCHES batches)."""
    event = {"type": "big", "payload": "x" * EVENT_PAD_BYTES, "options": {"persist": False}}
    async with httpx.AsyncClient(base_url=running.http(0), timeout=30) as client:
        for _ in range(BATCHES):
            await emit(running, 0, *[event] * BATCH)
            metrics = (await client.get("/metrics")).text
            if "\nevents_slow_consumers_total 1.0" in metrics:
                return
    raise AssertionError("no slow consumer after every batch")


async def test_a_client_that_stops_reading_is_cut_off_and_told_so(small_bounds):
    async with stream(small_bounds.http(0), "types=big", keyed(small_bounds)) as response:
        reader = await opened(response, retry=2000)  # the default
        await emit_until_cut_off(small_bounds)
        messages = [m for m in await reader.rest() if m.comment is None]
    *delivered, last = messages
    assert last.event == "error"
    assert last.json()["error"] == "SlowConsumer"
    assert all(m.json()["type"] == "big" for m in delivered)
