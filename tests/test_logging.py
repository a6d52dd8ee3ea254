"""Logs: JSON lines on stdout with the context, one access line per request (section 6)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from django.test import AsyncClient

from kernel.context import correlation_id_var, user_id_var, workspace_id_var
from tests.helpers import connect, ws_client

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v2/workspaces/acme/events"
ROOT = Path(__file__).resolve().parent.parent


def lines_of(lines: list[dict], message: str) -> list[dict]:
    return [line for line in lines if line["message"] == message]


def access_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "events.access"]


def test_every_line_is_json_with_timestamp_level_logger_and_message(log_lines):
    logging.getLogger("events.test").warning("disk %s is %d%% full", "sda", 91)
    [line] = lines_of(log_lines(), "disk sda is 91% full")
    assert line["level"] == "WARNING"
    assert line["logger"] == "events.test"
    assert line["timestamp"].endswith("Z")


def test_lines_carry_the_correlation_user_and_workspace_where_known(log_lines):
    context_vars = (correlation_id_var, user_id_var, workspace_id_var)
    outside_tokens = [var.set(None) for var in context_vars]
    logging.getLogger("events.test").info("outside any request")
    values = ("corr-7", "u-42", "acme")
    inside_tokens = [var.set(value) for var, value in zip(context_vars, values, strict=True)]
    logging.getLogger("events.test").info("inside a request")
    for tokens in (inside_tokens, outside_tokens):
        for var, token in zip(context_vars, tokens, strict=True):
            var.reset(token)
    outside, inside = log_lines()
    assert "correlationId" not in outside
    assert inside["correlationId"] == "corr-7"
    assert inside["userId"] == "u-42"
    assert inside["workspaceId"] == "acme"


def test_extra_fields_of_the_caller_come_out_as_fields(log_lines):
    extra = {"code": 1000, "durationMs": 12, "delivered": 3}
    logging.getLogger("events.test").info("bye", extra=extra)
    [line] = log_lines()
    assert {key: line[key] for key in extra} == extra


def test_an_exception_comes_with_its_full_stack_trace(log_lines):
    try:
        {}["missing"]
    except KeyError:
        logging.getLogger("events.test").exception("lookup failed")
    [line] = log_lines()
    assert line["level"] == "ERROR"
    assert "Traceback (most recent call last)" in line["exception"]
    assert "KeyError: 'missing'" in line["exception"]


def test_credentials_in_a_message_are_redacted(log_lines):
    logging.getLogger("events.test").info("GET /x?token=s3cr3t&types=a")
    [line] = log_lines()
    assert "s3cr3t" not in line["message"]
    assert "types=a" in line["message"]


def test_structlog_loggers_write_the_same_json(log_lines):
    structlog.get_logger("events.structured").info("archived", count=5)
    [line] = lines_of(log_lines(), "archived")
    assert line["count"] == 5
    assert line["logger"] == "events.structured"
    assert line["level"] == "INFO"


async def test_an_http_request_leaves_one_access_line(broker, key, log_lines):
    response = await AsyncClient().post(
        URL,
        json.dumps({"events": [{"type": "a"}]}),
        content_type="application/json",
        headers={"X-Api-Key": key, "X-Correlation-Id": "corr-access"},
    )
    assert response.status_code == 201
    [line] = access_lines(log_lines())
    assert line["method"] == "POST"
    assert line["path"] == URL
    assert line["status"] == 201
    assert line["durationMs"] >= 0
    assert line["correlationId"] == "corr-access"
    assert line["workspaceId"] == "acme"
    assert line["userId"].startswith("apikey:")


async def test_the_access_line_redacts_credentials_in_the_query_string(broker, key, log_lines):
    await AsyncClient().get(f"{URL}/poll", {"timeout": "0", "token": "s3cr3t", "apiKey": key})
    lines = log_lines()
    [line] = access_lines(lines)
    assert line["status"] == 401
    assert "timeout=0" in line["query"]
    assert "token=[REDACTED]" in line["query"]
    assert "s3cr3t" not in json.dumps(lines)
    assert key not in json.dumps(lines)


async def test_an_unknown_path_also_leaves_an_access_line(log_lines):
    await AsyncClient().get("/nowhere")
    [line] = access_lines(log_lines())
    assert line["status"] == 404


async def test_websocket_connect_and_disconnect_lines_carry_the_context(broker, key, log_lines):
    headers = [(b"x-api-key", key.encode()), (b"x-correlation-id", b"corr-ws")]
    client = ws_client(headers=headers)
    connected, _ = await client.connect(timeout=5)
    assert connected
    await client.disconnect()
    lines = log_lines()
    [opened] = lines_of(lines, "websocket connected")
    [closed] = lines_of(lines, "websocket disconnected")
    for line in (opened, closed):
        assert line["correlationId"] == "corr-ws"
        assert line["workspaceId"] == "acme"
        assert line["userId"].startswith("apikey:")
    assert closed["code"] == 1000
    assert closed["delivered"] >= 0
    assert closed["durationMs"] >= 0


async def test_the_correlation_id_is_echoed_and_written_into_every_event_it_causes(broker, key):
    response = await AsyncClient().post(
        URL,
        json.dumps({"events": [{"type": "a"}, {"type": "b"}]}),
        content_type="application/json",
        headers={"X-Api-Key": key, "X-Correlation-Id": "corr-emit"},
    )
    assert response["X-Correlation-Id"] == "corr-emit"
    sources = [event["source"] for event in response.json()["events"]]
    assert [source["correlationId"] for source in sources] == ["corr-emit", "corr-emit"]


async def test_a_correlation_id_is_made_when_the_caller_sends_none(broker, key):
    response = await AsyncClient().post(
        URL,
        json.dumps({"events": [{"type": "a"}]}),
        content_type="application/json",
        headers={"X-Api-Key": key},
    )
    correlation_id = response["X-Correlation-Id"]
    assert len(correlation_id) == 16
    assert response.json()["events"][0]["source"]["correlationId"] == correlation_id


async def test_a_websocket_emit_carries_the_handshake_s_correlation_id(broker, key):
    client = await connect(key)
    await client.disconnect()
    headers = [(b"x-api-key", key.encode()), (b"x-correlation-id", b"corr-ws-emit")]
    client = ws_client(headers=headers)
    assert (await client.connect(timeout=5))[0]
    await client.send_json_to({"op": "emit", "ref": 1, "event": {"type": "a"}})
    while (frame := await client.receive_json_from(timeout=5))["op"] != "ack":
        pass
    assert frame["event"]["source"]["correlationId"] == "corr-ws-emit"
    await client.disconnect()


def test_a_service_process_writes_json_lines_to_stdout():
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('events.boot').info('ready', extra={'port': 8300})"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "eventsproject.settings"}
    result = subprocess.run(  # noqa: S603 - a fixed command
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["message"] == "ready"
    assert line["port"] == 8300
    assert line["level"] == "INFO"
    assert line["logger"] == "events.boot"
