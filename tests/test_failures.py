"""Unexpected failures: the generic 500, the stack in the log, the ``error`` event (section 6)."""

from __future__ import annotations

import json

import pytest
from django.test import AsyncClient, RequestFactory

from adapters.http.failures import server_error
from events.broker import get_live_stream
from kernel.context import correlation_id_var
from kernel.ids import ZERO_ID
from tests.helpers import connect, next_frames

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v2/workspaces/acme/events"
GENERIC = {"error": "InternalError", "message": "Internal error"}


def fail_publishing_except_errors(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    """Make the real broker raise on every publish but that of ``error`` events."""
    stream = get_live_stream()
    real_append = stream.append

    async def append(workspace_id: str, stored: list[bytes]) -> list[str]:
        if any(b'"type":"error"' in data for data in stored):
            return await real_append(workspace_id, stored)
        raise exc

    monkeypatch.setattr(stream, "append", append)


async def error_events(workspace_id: str = "acme") -> list[dict]:
    page = await get_live_stream().read_after(workspace_id, ZERO_ID, count=1000)
    return [event for event in page.events if event["type"] == "error"]


def failure_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["message"].startswith("unexpected failure in")]


@pytest.mark.parametrize(
    "exc", [RuntimeError("broker exploded"), TimeoutError("broker timed out")], ids=str
)
async def test_a_failing_emit_answers_500_logs_the_stack_and_emits_an_error_event(
    broker, key, log_lines, monkeypatch, exc
):
    fail_publishing_except_errors(monkeypatch, exc)
    response = await AsyncClient().post(
        URL,
        json.dumps({"events": [{"type": "orders.created"}]}),
        content_type="application/json",
        headers={"X-Api-Key": key, "X-Correlation-Id": "corr-fail-1"},
    )
    assert response.status_code == 500
    assert response.json() == {**GENERIC, "correlationId": "corr-fail-1"}
    assert response["X-Correlation-Id"] == "corr-fail-1"
    [line] = failure_lines(log_lines())
    assert line["correlationId"] == "corr-fail-1"
    assert line["workspaceId"] == "acme"
    assert line["userId"].startswith("apikey:")
    assert "Traceback (most recent call last)" in line["exception"]
    assert f"{type(exc).__name__}: {exc}" in line["exception"]
    [event] = await error_events()
    assert event["source"]["correlationId"] == "corr-fail-1"
    assert event["source"]["userId"].startswith("apikey:")
    assert event["error"]["error"] == "InternalError"
    assert event["error"]["level"] == "error"
    assert event["payload"] == {"where": f"POST {URL}"}


async def test_the_500_body_says_nothing_of_the_failure(broker, key, monkeypatch):
    fail_publishing_except_errors(monkeypatch, RuntimeError("password=hunter2 at db-7"))
    response = await AsyncClient().post(
        URL,
        json.dumps({"events": [{"type": "a"}]}),
        content_type="application/json",
        headers={"X-Api-Key": key},
    )
    body = response.json()
    assert set(body) == {"error", "message", "correlationId"}
    assert body["correlationId"] == response["X-Correlation-Id"]
    assert "hunter2" not in response.content.decode()


async def test_a_long_poll_whose_broker_times_out_answers_500_with_its_error_event(
    broker, key, log_lines, monkeypatch
):
    async def hang_up(*args: object, **kwargs: object) -> None:
        raise TimeoutError("XREAD timed out")

    [emitted] = (
        await AsyncClient().post(
            URL,
            json.dumps({"events": [{"type": "a"}]}),
            content_type="application/json",
            headers={"X-Api-Key": key},
        )
    ).json()["events"]
    monkeypatch.setattr(get_live_stream(), "check_cursor", hang_up)
    response = await AsyncClient().get(
        f"{URL}/poll",
        {"cursor": emitted["id"], "timeout": "1"},
        headers={"X-Api-Key": key, "X-Correlation-Id": "corr-poll"},
    )
    assert response.status_code == 500
    assert response.json() == {**GENERIC, "correlationId": "corr-poll"}
    [line] = failure_lines(log_lines())
    assert "TimeoutError: XREAD timed out" in line["exception"]
    assert line["correlationId"] == "corr-poll"
    [event] = await error_events()
    assert event["source"]["correlationId"] == "corr-poll"


async def test_a_failing_plain_django_view_answers_the_json_500(broker, log_lines, monkeypatch):
    def explode() -> bytes:
        raise ValueError("cannot render")

    monkeypatch.setattr("sysadmin.metrics.exposition", explode)
    response = await AsyncClient().get("/metrics", headers={"X-Correlation-Id": "corr-metrics"})
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {**GENERIC, "correlationId": "corr-metrics"}
    [line] = failure_lines(log_lines())
    assert "ValueError: cannot render" in line["exception"]
    assert line["correlationId"] == "corr-metrics"


async def test_a_failing_operations_view_answers_the_json_500(broker, log_lines, monkeypatch):
    async def explode() -> dict:
        raise KeyError("lost")

    monkeypatch.setattr("sysadmin.views.health", explode)
    response = await AsyncClient().get("/sys/healthcheck")
    assert response.status_code == 500
    assert response.json() == {**GENERIC, "correlationId": response["X-Correlation-Id"]}
    assert "KeyError" in failure_lines(log_lines())[0]["exception"]


def test_django_s_own_500_handler_answers_json():
    token = correlation_id_var.set("corr-handler")
    try:
        response = server_error(RequestFactory().get("/anything"))
    finally:
        correlation_id_var.reset(token)
    assert response.status_code == 500
    assert json.loads(response.content) == {**GENERIC, "correlationId": "corr-handler"}


async def test_a_failing_websocket_frame_gets_an_error_frame_and_the_connection_stays(
    broker, key, log_lines, monkeypatch
):
    client = await connect(key)
    fail_publishing_except_errors(monkeypatch, RuntimeError("broker exploded"))
    await client.send_json_to({"op": "emit", "ref": "r1", "event": {"type": "orders.created"}})
    [frame] = await next_frames(client, 1, op="error")
    assert frame["ref"] == "r1"
    assert frame["error"] == "InternalError"
    assert frame["message"] == "Internal error"
    await client.send_json_to({"op": "ping"})
    assert await next_frames(client, 1, op="pong")
    await client.disconnect()
    [line] = failure_lines(log_lines())
    assert line["correlationId"] == frame["correlationId"]
    assert line["workspaceId"] == "acme"
    assert "RuntimeError: broker exploded" in line["exception"]
    [event] = await error_events()
    assert event["source"]["correlationId"] == frame["correlationId"]
    assert event["payload"] == {"where": "websocket frame"}


async def test_the_error_event_names_only_the_exception_class_never_its_text(
    broker, key, monkeypatch
):
    fail_publishing_except_errors(monkeypatch, RuntimeError("password=hunter2 at db-7"))
    response = await AsyncClient().post(
        URL,
        json.dumps({"events": [{"type": "a"}]}),
        content_type="application/json",
        headers={"X-Api-Key": key, "X-Correlation-Id": "corr-secret"},
    )
    assert response.status_code == 500
    [event] = await error_events()
    assert "hunter2" not in json.dumps(event)
    assert event["error"] == {
        "error": "InternalError",
        "message": "RuntimeError",
        "exception": "RuntimeError",
        "correlationId": "corr-secret",
        "level": "error",
    }
