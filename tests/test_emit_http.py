"""HTTP emit: ``POST /v2/workspaces/{workspaceId}/events`` (contract sections 1 and 2)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from events.broker import get_live_stream
from kernel.ids import ZERO_ID

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v2/workspaces/acme/events"


def emit_body(*events: dict) -> str:
    return json.dumps({"events": list(events)})


async def post(key: str, body: str | bytes, url: str = URL, **headers: str):
    return await AsyncClient().post(
        url, body, content_type="application/json", headers={"X-Api-Key": key, **headers}
    )


async def stored_types(workspace_id: str = "acme") -> list[str]:
    page = await get_live_stream().read_after(workspace_id, ZERO_ID, count=1000)
    return [event["type"] for event in page.events]


async def test_it_returns_the_stored_envelopes_in_order(broker, key):
    response = await post(key, emit_body({"type": "a", "payload": 1}, {"type": "b", "payload": 2}))
    assert response.status_code == 201
    events = response.json()["events"]
    assert [e["type"] for e in events] == ["a", "b"]
    assert events[0]["id"] < events[1]["id"]
    assert events[0]["source"]["workspaceId"] == "acme"
    assert events[0]["options"] == {"persist": True}
    assert events[0]["size"] > 0
    assert events[0]["createdAt"].endswith("Z")


async def test_it_ignores_the_source_a_client_sends(broker, key):
    forged = {"type": "a", "source": {"userId": "someone-else"}, "id": "x", "createdAt": "then"}
    [event] = (await post(key, emit_body(forged))).json()["events"]
    assert event["source"]["userId"].startswith("apikey:")
    assert event["id"] != "x"
    assert event["createdAt"] != "then"


async def test_it_echoes_and_records_the_correlation_id(broker, key):
    response = await post(key, emit_body({"type": "a"}), **{"X-Correlation-Id": "corr-123"})
    assert response["X-Correlation-Id"] == "corr-123"
    assert response.json()["events"][0]["source"]["correlationId"] == "corr-123"


async def test_it_generates_a_correlation_id_when_none_is_sent(broker, key):
    response = await post(key, emit_body({"type": "a"}))
    generated = response["X-Correlation-Id"]
    assert generated
    assert response.json()["events"][0]["source"]["correlationId"] == generated


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not JSON"),
        (b'{"events": []}', "1 to 100"),
        (b'{"events": "a"}', "events"),
        (b"[]", "events"),
        (b'{"events": [{"type": ""}]}', "type"),
        (b'{"events": [{"type": "a/b"}]}', "type"),
        (b'{"events": [{"type": "a", "target": "u-1"}]}', "target"),
        (b'{"events": [{"type": "a", "options": {"persist": "no"}}]}', "persist"),
    ],
)
async def test_it_refuses_bad_input_with_a_validation_error(broker, key, body, fragment):
    response = await post(key, body)
    assert response.status_code == 400
    assert response.json()["error"] == "ValidationError"
    assert fragment in response.json()["message"]
    assert await stored_types() == []


async def test_it_refuses_101_events_and_publishes_none(broker, key):
    response = await post(key, emit_body(*[{"type": "a"}] * 101))
    assert response.status_code == 400
    assert response.json()["details"]["count"] == 101
    assert await stored_types() == []


async def test_a_batch_is_all_or_nothing(broker, key):
    response = await post(key, emit_body({"type": "ok"}, {"type": "bad type!"}))
    assert response.status_code == 400
    assert response.json()["details"]["index"] == 1
    assert await stored_types() == []


async def test_it_refuses_an_oversize_event_with_413(broker, key):
    big = {"type": "a", "payload": "x" * 102_400}
    response = await post(key, emit_body({"type": "small"}, big))
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "EventTooLarge"
    assert body["details"]["index"] == 1
    assert await stored_types() == []


async def test_it_accepts_an_event_just_under_the_limit(broker, key):
    response = await post(key, emit_body({"type": "a", "payload": "x" * 100_000}))
    assert response.status_code == 201


async def test_it_answers_404_for_an_unknown_workspace(broker, key):
    response = await post(key, emit_body({"type": "a"}), url="/v2/workspaces/nope/events")
    assert response.status_code == 404
    assert response.json()["error"] == "WorkspaceNotFound"


async def test_it_answers_401_without_credentials(broker, workspace):
    response = await AsyncClient().post(
        URL, emit_body({"type": "a"}), content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["error"] == "NotAuthenticated"


async def test_it_answers_403_to_a_key_without_emit(broker, make_key):
    response = await post(
        await sync_to_async(make_key)("acme", "consume"), emit_body({"type": "a"})
    )
    assert response.status_code == 403
    assert response.json()["error"] == "PermissionDenied"


@pytest.mark.parametrize(
    "path", ["/v2/nothing", "/v2/workspaces/acme/nothing", "/v2/workspaces/acme/events/", "/sys/x"]
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_api_path_answers_the_contracts_json_404(path, method):
    from django.test import Client

    response = getattr(Client(), method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "NotFound"
