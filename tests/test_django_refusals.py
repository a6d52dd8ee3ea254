"""Django's own refusals answer the contract's JSON, with one warning line and no stack.

More than ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` (1,000) query parameters, a host
name not in ``DJANGO_ALLOWED_HOSTS``: Django calls these suspicious operations
and answers its HTML 400 page, logging a stack trace (here even a 500 and an
``error`` event, through DRF). Tried on a real server, reading its real output.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.servers import deployment


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    output = tmp_path_factory.mktemp("refusals") / "server.log"
    with deployment(1, server="uvicorn", output=output, DJANGO_ALLOWED_HOSTS="127.0.0.1") as up:
        yield up, output


def log_lines(output) -> list[dict]:
    return [json.loads(line) for line in output.read_text().splitlines() if line.startswith("{")]


def lines_about(output, correlation_id: str) -> list[dict]:
    return [line for line in log_lines(output) if line.get("correlationId") == correlation_id]


def test_more_than_a_thousand_query_parameters_answer_a_json_400(server):
    running, output = server
    query = "&".join(f"payload.f{i}=1" for i in range(1_100))
    answer = httpx.get(
        f"{running.http(0)}/v2/workspaces/acme/events?{query}",
        headers={"X-Api-Key": running.key, "X-Correlation-Id": "too-many-fields"},
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "ValidationError"
    assert "1000" in body["message"]
    assert "Traceback" not in output.read_text()
    logged = lines_about(output, "too-many-fields")
    warnings = [line for line in logged if line["level"] == "WARNING"]
    assert len(warnings) == 1
    assert not [line for line in logged if line["level"] in ("ERROR", "CRITICAL")]
    assert all("exception" not in line for line in logged)


def test_a_host_not_allowed_answers_a_json_400(server):
    running, output = server
    answer = httpx.get(
        f"{running.http(0)}/v2/schema",
        headers={"Host": "evil.example", "X-Correlation-Id": "bad-host"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "ValidationError"
    assert "Traceback" not in output.read_text()
    warnings = [line for line in lines_about(output, "bad-host") if line["level"] == "WARNING"]
    assert len(warnings) == 1
