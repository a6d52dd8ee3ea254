"""A dependency that does not answer: 503 with Retry-After, one stack per outage (section 6).

Redis is a server of the test's own (tests/redis_server.py), stopped and started
again; Elasticsearch is an address nobody listens on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable

import pytest
from django.test import AsyncClient, override_settings

from events.broker import get_live_stream
from kernel.ids import ZERO_ID
from tests.helpers import connect, eventually, next_frames
from tests.redis_server import RedisServer
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v2/workspaces/acme/events"
UNAVAILABLE = {"error": "ServiceUnavailable", "message": "A dependency is unavailable; try again"}
FAILING_REQUESTS = 6


async def emit(key: str, correlation_id: str = "", event_type: str = "orders.created"):
    headers = {"X-Api-Key": key}
    if correlation_id:
        headers["X-Correlation-Id"] = correlation_id
    return await AsyncClient().post(
        URL,
        json.dumps({"events": [{"type": event_type}]}),
        content_type="application/json",
        headers=headers,
    )


def tracebacks(lines: list[dict]) -> list[dict]:
    return [line for line in lines if "Traceback" in line.get("exception", "")]


def assert_unavailable(response, server: RedisServer) -> None:
    assert response.status_code == 503, response.content
    assert response.json() == UNAVAILABLE
    assert int(response["Retry-After"]) > 0
    text = response.content.decode()
    for internal in (str(server.port), "127.0.0.1", "Connection", "Error "):
        assert internal not in text


async def test_an_emit_while_redis_is_down_answers_503_with_retry_after(own_redis, key):
    assert (await emit(key)).status_code == 201
    own_redis.stop()
    assert_unavailable(await emit(key), own_redis)


async def test_a_long_poll_while_redis_is_down_answers_503(own_redis, key):
    [first] = (await emit(key)).json()["events"]
    own_redis.stop()
    response = await AsyncClient().get(
        f"{URL}/poll", {"cursor": first["id"], "timeout": "1"}, headers={"X-Api-Key": key}
    )
    assert_unavailable(response, own_redis)
    response = await AsyncClient().get(f"{URL}/poll", {"timeout": "1"}, headers={"X-Api-Key": key})
    assert_unavailable(response, own_redis)


async def test_a_websocket_emit_while_redis_is_down_gets_an_error_frame_and_stays(own_redis, key):
    client = await connect(key)
    await client.send_json_to({"op": "ping"})
    assert await next_frames(client, 1, op="pong")  # the handshake's work is done
    own_redis.stop()
    await client.send_json_to({"op": "emit", "ref": "r1", "event": {"type": "orders.created"}})
    [frame] = await next_frames(client, 1, op="error")
    assert frame == {"op": "error", "ref": "r1", **UNAVAILABLE}
    await client.send_json_to({"op": "ping"})
    assert await next_frames(client, 1, op="pong")
    await client.disconnect()


async def test_the_error_event_of_an_outage_is_emitted_once_redis_answers_again(own_redis, key):
    assert (await emit(key)).status_code == 201
    own_redis.stop()
    for n in range(3):
        assert (await emit(key, f"corr-down-{n}")).status_code == 503
    own_redis.start()  # empty: a cache-like Redis
    assert (await emit(key, "corr-back")).status_code == 201

    async def error_ids() -> list[str]:
        page = await get_live_stream().read_after("acme", ZERO_ID, count=100)
        return [e["source"]["correlationId"] for e in page.events if e["type"] == "error"]

    await eventually(lambda: _has(error_ids, 3))
    assert await error_ids() == ["corr-down-0", "corr-down-1", "corr-down-2"]


async def _has(read, count: int) -> bool:
    return len(await read()) >= count


async def test_an_outage_logs_one_stack_then_one_line_per_failure_then_recovered(
    own_redis, key, log_lines
):
    assert (await emit(key)).status_code == 201
    log_lines()
    own_redis.stop()
    for n in range(FAILING_REQUESTS):
        assert (await emit(key, f"corr-{n}")).status_code == 503
        assert (await AsyncClient().get("/sys/healthcheck")).status_code == 503
    down = log_lines()
    [stack] = tracebacks(down)
    assert stack["correlationId"] == "corr-0"
    assert "ConnectionError" in stack["exception"]
    lines = [line for line in down if line["message"].startswith("broker still unavailable")]
    assert [line["correlationId"] for line in lines if "POST" in line["message"]] == [
        f"corr-{n}" for n in range(1, FAILING_REQUESTS)
    ]
    assert len([line for line in lines if "health check" in line["message"]]) == FAILING_REQUESTS
    own_redis.start()
    assert (await emit(key)).status_code == 201
    assert (await emit(key)).status_code == 201
    up = log_lines()
    [recovered] = [line for line in up if "recovered" in line["message"]]
    failures = 2 * FAILING_REQUESTS  # the emits and the health probes
    assert recovered["message"].startswith(f"broker recovered after {failures} failures")
    assert not tracebacks(up)


async def test_a_history_outage_logs_one_stack_for_many_failing_searches(
    transactional_db, key, log_lines
):
    with override_settings(ELASTICSEARCH_URL=f"http://127.0.0.1:{free_port()}"):
        from history import reset_history

        reset_history()
        try:
            log_lines()
            for n in range(FAILING_REQUESTS):
                response = await AsyncClient().get(
                    URL, {"types": "a"}, headers={"X-Api-Key": key, "X-Correlation-Id": f"s-{n}"}
                )
                assert response.status_code == 503
                assert int(response["Retry-After"]) > 0
                assert (await AsyncClient().get("/sys/healthcheck")).status_code == 503
        finally:
            reset_history()
    lines = log_lines()
    assert len(tracebacks(lines)) == 1
    still = [line for line in lines if line["message"].startswith("history still unavailable")]
    searches = [line["correlationId"] for line in still if "a search of" in line["message"]]
    assert searches == [f"s-{n}" for n in range(1, FAILING_REQUESTS)]


async def test_audit_events_redis_cannot_take_wait_for_it_and_log_one_stack_per_outage(
    own_redis, key, log_lines
):
    assert (await emit(key)).status_code == 201
    own_redis.stop()
    log_lines()
    for n in range(FAILING_REQUESTS):
        response = await AsyncClient().get(
            URL, {"types": "a"}, headers={"X-Api-Key": key, "X-Correlation-Id": f"a-{n}"}
        )
        assert response.status_code == 200  # the SQLite history answers the search
    await asyncio.sleep(0.5)  # the outbox retries meanwhile, against a Redis still down
    own_redis.start()
    expected = [f"a-{n}" for n in range(FAILING_REQUESTS)]

    async def audited() -> list[str]:
        page = await get_live_stream().read_after("acme", ZERO_ID, count=100)
        searched = [e for e in page.events if e["type"] == "events.searched"]
        return [e["source"]["correlationId"] for e in searched]

    await eventually(lambda: _equal(audited(), expected))
    assert await audited() == expected
    lines = log_lines()
    assert len(tracebacks(lines)) == 1
    assert any(line["message"].startswith("broker recovered") for line in lines)


async def _equal(found: Awaitable[list[str]], expected: list[str]) -> bool:
    return await found == expected
