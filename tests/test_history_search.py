"""Search of the history (contract section 2), on the SQLite and Elasticsearch histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from events.broker import get_live_stream
from events.filters import parse_filters
from history import get_history
from history.base import SearchQuery
from history.fence import parse_query_body
from kernel.caller import Caller
from tests.history_helpers import (  # the fixtures: autouse in this module
    archive_all,
    close_history,  # noqa: F401
    emit,
    events_path,
    found_types,
    memory_broker,  # noqa: F401
    search,
)

pytestmark = pytest.mark.django_db(transaction=True)


def owner(user: str = "olga") -> Caller:
    return Caller.for_user("acme", user, "owner")


def viewer(user: str = "vera", session: str | None = None) -> Caller:
    return Caller.for_user("acme", user, "viewer", session_id=session)


async def publish_raw(*events: dict, workspace_id: str = "acme") -> list[str]:
    """Publish events straight to the broker (set createdAt, target, ... freely)."""
    return await get_live_stream().append(workspace_id, [orjson.dumps(e) for e in events])


async def find(caller: Caller, limit: int = 50, **params) -> list[dict]:
    """Search as any caller (the service function's query, without HTTP)."""
    query = SearchQuery("acme", caller, parse_filters(params), limit=limit)
    return (await get_history().search(query)).events


async def test_it_finds_an_emitted_event_after_the_archiver_flush(history, key):
    [sent] = await emit(key, {"type": "orders.created", "payload": {"orderId": 42}})
    await archive_all()
    reply = await search(key, types="orders.created")
    assert reply.status_code == 200
    assert reply.json() == {"result": {"events": [sent], "next": None}}


async def test_it_filters_types_with_wildcards(history, key):
    for event_type in ("orders.created", "orders.paid", "users.created", "ordersx"):
        await emit(key, {"type": event_type})
    await archive_all()
    assert await found_types(key, types="orders.*", sort="asc") == ["orders.created", "orders.paid"]
    assert await found_types(key, types="*.created", sort="asc") == [
        "orders.created",
        "users.created",
    ]
    assert await found_types(key, types="ordersx,users.created") == ["ordersx", "users.created"]


async def test_it_finds_every_word_of_a_text_in_type_or_payload_strings(history, key):
    await emit(
        key,
        {"type": "tickets.opened", "payload": {"note": "Customer asks for a REFUND, quickly"}},
        {"type": "tickets.opened", "payload": {"note": "refund-policy", "count": 7}},
        {"type": "refund.asked", "payload": {"nested": [{"why": "Broken screen"}]}},
    )
    await archive_all()
    assert len(await found_types(key, text="refund")) == 3
    assert await found_types(key, text="Refund quickly") == ["tickets.opened"]
    assert await found_types(key, text="broken REFUND") == ["refund.asked"]
    assert await found_types(key, text="7") == []
    assert len(await found_types(key, text=["quickly", "policy"])) == 2


async def test_it_filters_by_dotted_fields_with_or_and_wildcards(history, key):
    await emit(
        key,
        {"type": "orders.created", "payload": {"orderId": 42, "region": "eu-west"}},
        {"type": "orders.created", "payload": {"orderId": "43", "region": "us-east"}},
        {"type": "orders.created", "payload": {"orderId": 44, "tags": ["vip", "new"]}},
        {"type": "orders.created", "payload": {"orderId": 45, "paid": True}},
    )
    await archive_all()
    find_ids = [e["payload"]["orderId"] for e in await find(owner(), **{"payload.orderId": "42"})]
    assert find_ids == [42]
    assert len(await found_types(key, **{"payload.orderId": ["42", "43"]})) == 2
    assert len(await found_types(key, **{"payload.region": "*-east"})) == 1
    assert len(await found_types(key, **{"payload.region": "eu*"})) == 1
    assert len(await found_types(key, **{"payload.tags": "vip"})) == 1
    assert len(await found_types(key, **{"payload.paid": "true"})) == 1
    assert len(await found_types(key, **{"source.userId": "apikey:*"})) == 4
    assert await found_types(key, **{"payload.region": "eu"}) == []


async def test_it_filters_dates_exclusively(history, key):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = [(base + timedelta(minutes=m)).isoformat().replace("+00:00", "Z") for m in range(3)]
    await publish_raw(
        *[{"type": "ticks", "payload": {"n": i}, "createdAt": s} for i, s in enumerate(stamps)]
    )
    await archive_all()
    reply = await search(key, types="ticks", afterDate=stamps[0], beforeDate=stamps[2])
    assert [e["payload"]["n"] for e in reply.json()["result"]["events"]] == [1]
    reply = await search(key, types="ticks", afterDate="2026-01-01T00:00:30+00:00")
    assert [e["payload"]["n"] for e in reply.json()["result"]["events"]] == [2, 1]


async def test_it_pages_with_a_cursor_newest_first_or_oldest_first(history, key):
    await emit(key, *[{"type": "pages", "payload": {"n": n}} for n in range(5)])
    await archive_all()
    for sort, expected in (("desc", [4, 3, 2, 1, 0]), ("asc", [0, 1, 2, 3, 4])):
        seen, cursor, pages = [], None, 0
        while True:
            params = {"types": "pages", "limit": 2, "sort": sort} | (
                {"cursor": cursor} if cursor else {}
            )
            result = (await search(key, **params)).json()["result"]
            seen += [e["payload"]["n"] for e in result["events"]]
            pages += 1
            cursor = result["next"]
            if cursor is None:
                break
        assert seen == expected
        assert pages == 3


async def test_it_shows_targeted_events_only_to_their_user_session_owners_and_keys(history, key):
    await publish_raw(
        {"type": "dm", "payload": {"to": "ann"}, "target": {"userId": "ann"}},
        {"type": "dm", "payload": {"to": "s-1"}, "target": {"sessionId": "s-1"}},
        {"type": "dm", "payload": {"to": "all"}},
    )
    await archive_all()

    async def sees(caller: Caller) -> list[str]:
        return sorted(e["payload"]["to"] for e in await find(caller, types="dm"))

    assert await sees(viewer("ann")) == ["all", "ann"]
    assert await sees(viewer("bob", session="s-1")) == ["all", "s-1"]
    assert await sees(viewer("bob")) == ["all"]
    assert await sees(owner()) == ["all", "ann", "s-1"]
    reply = await search(key, types="dm")
    assert len(reply.json()["result"]["events"]) == 3


async def test_it_never_answers_a_short_page_because_of_the_read_rule(history):
    private = [
        {"type": "chat", "payload": {"n": n}, "target": {"userId": "zed"}} for n in range(30)
    ]
    public = [{"type": "chat", "payload": {"n": 100 + n}} for n in range(5)]
    await publish_raw(*public[:2], *private, *public[2:])
    await archive_all()
    page = await get_history().search(
        SearchQuery("acme", viewer(), parse_filters({"types": "chat"}), limit=4)
    )
    assert [e["payload"]["n"] for e in page.events] == [104, 103, 102, 101]
    assert page.next_after_id is not None


async def test_it_does_not_store_events_with_persist_false(history, key):
    await emit(key, {"type": "live.only", "options": {"persist": False}}, {"type": "live.kept"})
    await archive_all()
    assert await found_types(key, types="live.*") == ["live.kept"]


async def test_it_stores_an_event_delivered_twice_once(history, key):
    [sent] = await emit(key, {"type": "twice"})
    await get_history().store([sent])
    await get_history().store([sent])
    await archive_all()
    assert await found_types(key, types="twice") == ["twice"]


async def test_it_keeps_workspaces_apart(history, key, make_key):
    other = await sync_to_async(make_key)("globex")
    await emit(key, {"type": "secret"})
    await emit(other, {"type": "secret"}, workspace_id="globex")
    await archive_all()
    reply = await search(other, workspace_id="globex", types="secret")
    [event] = reply.json()["result"]["events"]
    assert event["source"]["workspaceId"] == "globex"


async def test_it_records_each_search_as_an_audit_event(history, key):
    await search(key, types="orders.*", **{"payload.orderId": "42"})
    await archive_all()
    [audit] = (await search(key, types="events.searched")).json()["result"]["events"]
    assert audit["payload"]["filters"] == {"types": ["orders.*"], "payload.orderId": ["42"]}
    assert audit["source"]["userId"].startswith("apikey:")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "many"},
        {"sort": "sideways"},
        {"afterDate": "yesterday"},
        {"cursor": "not-a-cursor"},
        {"colour": "red"},
    ],
)
async def test_it_refuses_bad_parameters_with_400(history, key, params):
    reply = await search(key, **params)
    assert reply.status_code == 400
    assert reply.json()["error"] == "ValidationError"


async def test_it_asks_for_credentials_and_the_search_scope(history, make_key):
    assert (await AsyncClient().get(events_path())).status_code == 401
    emit_only = await sync_to_async(make_key)("acme", "emit")
    reply = await search(emit_only)
    assert reply.status_code == 403
    assert reply.json()["error"] == "PermissionDenied"


async def test_it_removes_events_older_than_the_retention(history, key):
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat().replace("+00:00", "Z")
    await publish_raw({"type": "aged", "createdAt": old}, {"type": "fresh"})
    await archive_all()
    await get_history().delete_older_than(datetime.now(UTC) - timedelta(days=30))
    await get_history().refresh()
    assert await found_types(key, types="aged,fresh") == ["fresh"]


# --- POST .../search: an Elasticsearch query body -----------------------------------


async def query(key: str, body: dict) -> object:
    return await AsyncClient().post(
        "/v2/workspaces/acme/search",
        body,
        content_type="application/json",
        headers={"X-Api-Key": key},
    )


async def test_it_answers_a_query_body_inside_the_workspace(history, key, make_key):
    await emit(key, {"type": "orders.created", "payload": {"orderId": 7}})
    await emit(
        await sync_to_async(make_key)("globex"), {"type": "orders.created"}, workspace_id="globex"
    )
    await archive_all()
    reply = await query(key, {"query": {"term": {"payload.orderId": "7"}}, "limit": 10})
    if history == "sqlite":
        assert reply.status_code == 501
        assert reply.json()["error"] == "NotImplemented"
        return
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["size"] == 1
    assert body["documents"][0]["payload"] == {"orderId": 7}
    everything = (await query(key, {"query": {"match_all": {}}})).json()
    assert {d["source"]["workspaceId"] for d in everything["documents"]} == {"acme"}


@pytest.mark.parametrize(
    "body",
    [
        {"query": {"script": {"script": {"source": "true"}}}},
        {"query": {"bool": {"filter": [{"script_score": {}}]}}},
        {"query": {"match_all": {}}, "runtime_mappings": {}},
        {"query": {"wrapper": {"query": "e30="}}},
        {"query": {"terms": {"type": {"index": "other", "id": "1", "path": "x"}}}},
        {"query": {"match_all": {}}, "from": 10000},
        {"query": {"match_all": {}}, "limit": 5000},
        {"query": "everything"},
    ],
)
async def test_it_refuses_query_bodies_that_leave_the_fence(history, key, body):
    reply = await query(key, body)
    assert reply.status_code == (400 if history == "elasticsearch" else 501)


async def test_it_names_a_query_type_it_does_not_allow(history, key):
    if history == "sqlite":
        pytest.skip("query bodies need Elasticsearch")
    reply = await query(key, {"query": {"no_such_query": {}}})
    assert reply.status_code == 400
    assert reply.json()["details"] == {"field": "query.no_such_query"}


async def test_it_keeps_aggregations_for_owners(history, key):
    if history == "sqlite":
        pytest.skip("query bodies need Elasticsearch")
    await emit(key, {"type": "a"}, {"type": "a"}, {"type": "b"})
    await archive_all()
    aggs = {"types": {"terms": {"field": "type"}}}
    reply = await query(key, {"query": {"match_all": {}}, "aggs": aggs})
    assert reply.status_code == 403
    body = parse_query_body(
        {"aggs": aggs, "query": {"terms": {"type": ["a", "b"]}}}, may_aggregate=True
    )
    result = await get_history().search_raw("acme", owner(), body)
    buckets = {b["key"]: b["doc_count"] for b in result["aggs"]["types"]["buckets"]}
    assert buckets == {"a": 2, "b": 1}


async def test_it_applies_the_read_rule_to_query_bodies(history):
    if history == "sqlite":
        pytest.skip("query bodies need Elasticsearch")
    await publish_raw({"type": "dm", "target": {"userId": "ann"}}, {"type": "dm"})
    await archive_all()
    body = parse_query_body({"query": {"term": {"type": "dm"}}}, may_aggregate=False)
    assert (await get_history().search_raw("acme", viewer("bob"), body))["size"] == 1
    assert (await get_history().search_raw("acme", viewer("ann"), body))["size"] == 2
