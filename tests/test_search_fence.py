"""The fence of ``POST .../search`` is an allow-list (issue 11, item 3).

Queries and aggregations of a body must be listed types with listed
parameters, within bounds; anything else is a 400 naming its path. A query
Elasticsearch itself refuses gets a generic reason, never Elasticsearch's text.
"""

from __future__ import annotations

import pytest
from django.test import AsyncClient

from tests.history_helpers import (  # the fixtures: autouse in this module
    archive_all,
    close_history,  # noqa: F401
    emit,
    memory_broker,  # noqa: F401
)

pytestmark = pytest.mark.django_db(transaction=True)
ES = pytest.mark.parametrize("history", ["elasticsearch"], indirect=True)


async def query(credential: str, body: object) -> object:
    """POST a query body with an API key, or a bearer token (``Bearer ...``)."""
    header = "Authorization" if credential.startswith("Bearer ") else "X-Api-Key"
    return await AsyncClient().post(
        "/v2/workspaces/acme/search", body, content_type="application/json",
        headers={header: credential},
    )  # fmt: skip


@pytest.fixture
def owner(make_token, key) -> str:
    """The credential of an owner of ``acme`` (aggregations are for owners)."""
    return f"Bearer {make_token('olga', 'owner')}"


def nested_bool(levels: int) -> dict:
    body: dict = {"term": {"type": "x"}}
    for _ in range(levels):
        body = {"bool": {"must": body}}
    return body


SCRIPT = {"source": "Math.log(2)"}
REFUSED = [
    # scripts, under any name
    ({"terms_set": {"type": {"terms": ["a"], "minimum_should_match_script": SCRIPT}}},
     None, "query.terms_set"),
    ({"bool": {"filter": [{"term": {"type": {"value": "a", "script": SCRIPT}}}]}},
     None, "query.bool.filter[0].term.type.script"),
    ({"script": {"script": SCRIPT}}, None, "query.script"),
    ({"function_score": {"query": {"match_all": {}}, "script_score": {"script": SCRIPT}}},
     None, "query.function_score"),
    ({"match_all": {}}, {"t": {"terms": {"field": "type", "script": SCRIPT}}},
     "aggs.t.terms.script"),
    ({"match_all": {}}, {"m": {"scripted_metric": {"map_script": "1"}}}, "aggs.m.scripted_metric"),
    # expensive or unknown query types
    ({"query_string": {"query": "type:/.*a.*a.*a.*/"}}, None, "query.query_string"),
    ({"regexp": {"type": "(a+)+b"}}, None, "query.regexp"),
    ({"fuzzy": {"type": {"value": "aaaa", "fuzziness": 2}}}, None, "query.fuzzy"),
    ({"no_such_query": {}}, None, "query.no_such_query"),
    ({"wrapper": {"query": "e30="}}, None, "query.wrapper"),
    ({"terms": {"type": {"index": "other", "id": "1", "path": "x"}}}, None, "query.terms.type"),
    ({"wildcard": {"type": {"value": "*a*a*a*a*a"}}}, None, "query.wildcard.type.value"),
    ({"wildcard": {"type": "?" * 5}}, None, "query.wildcard.type"),
    ({"prefix": {"type": "p" * 300}}, None, "query.prefix.type"),
    ({"match": {"@text": {"query": "x", "fuzziness": "AUTO"}}}, None,
     "query.match.@text.fuzziness"),
    # huge sizes and deep nesting
    ({"terms": {"type": [f"t{n}" for n in range(101)]}}, None, "query.terms.type"),
    ({"bool": {"should": [{"term": {"type": "x"}}] * 51}}, None, "query.bool.should"),
    (nested_bool(11), None, "query" + ".bool.must" * 10 + ".bool"),
    ({"match_all": {}}, {"t": {"terms": {"field": "type", "size": 100_000}}}, "aggs.t.terms.size"),
    ({"match_all": {}}, {"h": {"top_hits": {"size": 1000}}}, "aggs.h.top_hits.size"),
    ({"match_all": {}}, {"h": {"date_histogram": {"field": "createdAt", "fixed_interval": "1ms"}}},
     "aggs.h.date_histogram.fixed_interval"),
    ({"match_all": {}},
     {"h": {"date_histogram": {"field": "createdAt", "calendar_interval": "day",
                               "extended_bounds": {"min": 0, "max": 10**13}}}},
     "aggs.h.date_histogram.extended_bounds"),
    ({"match_all": {}},
     {"h": {"histogram": {"field": "n", "interval": 1, "min_doc_count": 0}}},
     "aggs.h.histogram.min_doc_count"),
    ({"match_all": {}}, {"t": {"terms": {"field": "type", "include": ".*a.*"}}},
     "aggs.t.terms.include"),
    ({"match_all": {}}, {"g": {"global": {}}}, "aggs.g.global"),
    ({"match_all": {}}, {"a": {"terms": {"field": "type"}, "aggs": {"b": {"terms": {
     "field": "type"}, "aggs": {"c": {"terms": {"field": "type"}, "aggs": {"d": {"max": {
     "field": "n"}}}}}}}}}, "aggs.a.aggs.b.aggs.c.aggs"),
]  # fmt: skip
REFUSED_IDS = [path for _, _, path in REFUSED]


@ES
@pytest.mark.parametrize(("query_part", "aggs", "path"), REFUSED, ids=REFUSED_IDS)
async def test_it_refuses_what_the_allow_list_lacks_naming_the_path(
    history, owner, query_part, aggs, path
):
    body = {"query": query_part, **({"aggs": aggs} if aggs else {})}
    reply = await query(owner, body)
    assert reply.status_code == 400, reply.content
    answer = reply.json()
    assert answer["error"] == "ValidationError"
    assert answer["details"] == {"field": path}
    assert answer["message"].startswith(path)


@ES
@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"query": {"match_all": {}}, "runtime_mappings": {}}, "runtime_mappings"),
        ({"query": {"match_all": {}}, "from": 10000}, "from"),
        ({"query": {"match_all": {}}, "limit": 5000}, "limit"),
        ({"query": "everything"}, "query"),
        ({"sort": [{"_script": {"type": "number", "script": SCRIPT}}]}, "sort[0]._script"),
        ({"sort": [{"createdAt": {"order": "desc", "nested": {}}}]}, "sort[0].createdAt.nested"),
        ({"sort": ["type"] * 6}, "sort"),
    ],
)
async def test_it_refuses_body_keys_and_sorts_it_does_not_know(history, key, body, path):
    reply = await query(key, body)
    assert reply.status_code == 400, reply.content
    assert reply.json()["details"] == {"field": path}


@ES
async def test_too_many_queries_in_one_body_are_refused(history, key):
    clauses = [{"term": {"type": f"t{n}"}} for n in range(50)]
    bool_query = dict.fromkeys(("must", "should", "filter", "must_not"), clauses)
    reply = await query(key, {"query": {"bool": {"should": [{"bool": bool_query}] * 2}}})
    assert reply.status_code == 400
    assert "at most 200 queries" in reply.json()["message"]


@ES
async def test_an_everyday_body_still_works(history, key, owner):
    await emit(
        key,
        {"type": "orders.created", "payload": {"note": "refund asked", "orderId": 7}},
        {"type": "orders.created", "payload": {"note": "all good"}},
        {"type": "orders.paid", "payload": {"note": "refund done"}},
    )
    await archive_all()
    body = {
        "query": {
            "bool": {
                "must": [{"match": {"@text": {"query": "refund", "operator": "and"}}}],
                "filter": [
                    {"prefix": {"type": "orders."}},
                    {"range": {"createdAt": {"gte": "2020-01-01T00:00:00Z"}}},
                ],
                "must_not": [{"term": {"type": "orders.deleted"}}],
            }
        },
        "sort": [{"createdAt": {"order": "desc"}}],
        "limit": 10,
        "aggs": {
            "types": {
                "terms": {"field": "type", "size": 10},
                "aggs": {
                    "per_day": {
                        "date_histogram": {"field": "createdAt", "calendar_interval": "day"}
                    }
                },
            }
        },
    }
    reply = await query(owner, body)
    assert reply.status_code == 200, reply.content
    answer = reply.json()
    assert sorted(d["type"] for d in answer["documents"]) == ["orders.created", "orders.paid"]
    buckets = {b["key"]: b["doc_count"] for b in answer["aggs"]["types"]["buckets"]}
    assert buckets == {"orders.created": 1, "orders.paid": 1}


@ES
async def test_a_query_elasticsearch_refuses_gets_a_reason_without_its_internals(
    history, key, log_lines
):
    await emit(key, {"type": "orders.created"})
    await archive_all()
    reply = await query(key, {"query": {"range": {"createdAt": {"gt": "not a date"}}}})
    assert reply.status_code == 400, reply.content
    answer = reply.json()
    assert answer == {
        "error": "ValidationError",
        "message": "the search could not be run: a value does not fit its field",
    }
    sorted_by_text = await query(key, {"sort": ["@text"]})
    assert sorted_by_text.status_code == 400
    assert sorted_by_text.json()["message"] == (
        "the search could not be run: a field cannot be used this way"
    )
    logged = [line for line in log_lines() if line.get("logger") == "history.elastic"]
    assert any("failed to parse date field [not a date]" in line["message"] for line in logged)
    assert all(line["level"] == "WARNING" for line in logged)


ALLOWED_QUERIES = [
    {"term": {"type": {"value": "a", "boost": 2, "case_insensitive": True}}},
    {"terms": {"type": ["a", "b"], "boost": 1}},
    {"match": {"@text": "refund"}},
    {"match_phrase": {"@text": {"query": "refund asked", "slop": 2}}},
    {"multi_match": {"query": "refund", "fields": ["@text", "type"], "type": "best_fields"}},
    {"range": {"createdAt": {"gte": "2020-01-01T00:00:00Z", "lt": "2100-01-01T00:00:00Z"}}},
    {"exists": {"field": "payload.orderId"}},
    {"prefix": {"type": {"value": "ord", "case_insensitive": False}}},
    {"wildcard": {"type": {"value": "ord*s.c?eated"}}},
    {"wildcard": {"type": "*created"}},
    {"ids": {"values": ["x"]}},
    {"match_all": {"boost": 1.5}},
    {"constant_score": {"filter": {"term": {"type": "a"}}, "boost": 1}},
    {"bool": {"should": [{"term": {"type": "a"}}], "minimum_should_match": "50%"}},
]
ALLOWED_AGGS = {
    "types": {"terms": {"field": "type", "size": 5, "order": {"_count": "desc"}}},
    "hours": {"date_histogram": {"field": "createdAt", "fixed_interval": "1h"}},
    "sizes": {"histogram": {"field": "size", "interval": 100, "min_doc_count": 1}},
    "small": {"range": {"field": "size", "ranges": [{"to": 100}, {"from": 100}]}},
    "recent": {"date_range": {"field": "createdAt", "ranges": [{"from": "now-1d"}]}},
    "created": {"filter": {"term": {"type": "orders.created"}}},
    "kinds": {"filters": {"filters": {"paid": {"term": {"type": "orders.paid"}}}}},
    "users": {"cardinality": {"field": "source.userId", "precision_threshold": 100}},
    "largest": {"max": {"field": "size"}},
    "size_stats": {"stats": {"field": "size"}},
    "latest": {"top_hits": {"size": 2, "sort": [{"createdAt": "desc"}]}},
}


@pytest.mark.parametrize(
    "query_part", ALLOWED_QUERIES, ids=[next(iter(q)) for q in ALLOWED_QUERIES]
)
def test_every_allowed_query_type_passes_the_fence(query_part):
    from history.fence import parse_query_body

    assert parse_query_body({"query": query_part}, may_aggregate=False).query == query_part


@ES
async def test_the_allowed_types_are_ones_elasticsearch_runs(history, key, owner):
    await emit(key, {"type": "orders.created", "payload": {"orderId": 7, "note": "refund"}})
    await archive_all()
    body = {"query": {"bool": {"should": ALLOWED_QUERIES}}, "aggs": ALLOWED_AGGS}
    reply = await query(owner, body)
    assert reply.status_code == 200, reply.content
    assert reply.json()["aggs"]["created"]["doc_count"] == 1


MALFORMED = [
    ({"term": {"type": "a", "source.userId": "u"}}, None, "query.term"),
    ({"exists": {"field": ""}}, None, "query.exists.field"),
    ({"bool": "everything"}, None, "query.bool"),
    ({"bool": {"must": {"term": {"type": "a"}}, "minimum_should_match": "most"}}, None,
     "query.bool.minimum_should_match"),
    ({"match": {"@text": {"operator": "and"}}}, None, "query.match.@text"),
    ({"match": {"@text": ["a"]}}, None, "query.match.@text"),
    ({"multi_match": {"fields": ["type"]}}, None, "query.multi_match"),
    ({"multi_match": {"query": "a", "fields": ["f"] * 11}}, None, "query.multi_match.fields"),
    ({"constant_score": {"boost": 1}}, None, "query.constant_score"),
    ({"match_none": {"boost": 1}}, None, "query.match_none.boost"),
    ({"ids": {"values": "x"}}, None, "query.ids.values"),
    ({"range": {"size": {"gt": {"nested": 1}}}}, None, "query.range.size.gt"),
    ({"match_all": {}}, {"t": {"terms": {"size": 5}}}, "aggs.t.terms"),
    ({"match_all": {}}, {"h": {"date_histogram": {"field": "createdAt"}}}, "aggs.h.date_histogram"),
    ({"match_all": {}}, {"h": {"histogram": {"field": "size"}}}, "aggs.h.histogram"),
    ({"match_all": {}}, {"t": {"terms": {"field": "type"}, "max": {"field": "size"}}}, "aggs.t"),
    ({"match_all": {}}, {"t": "terms"}, "aggs.t"),
    ({"match_all": {}}, {}, "aggs"),
    ({"match_all": {}}, {"t": {"terms": {"field": "type", "order": {"_count": "up"}}}},
     "aggs.t.terms.order._count"),
    ({"match_all": {}}, {"t": {"terms": {"field": "type", "order": [{"_key": "asc", "x": 1}]}}},
     "aggs.t.terms.order[0]"),
    ({"match_all": {}}, {"k": {"filters": {"filters": []}}}, "aggs.k.filters.filters"),
    ({"match_all": {}}, {"k": {"filters": {"filters": [{"regexp": {"type": "a"}}]}}},
     "aggs.k.filters.filters[0].regexp"),
    ({"match_all": {}}, {"r": {"range": {"field": "size", "ranges": [{"from": 1}] * 21}}},
     "aggs.r.range.ranges"),
    ({"match_all": {}}, {"h": {"histogram": {"field": "size", "interval": 0}}},
     "aggs.h.histogram.interval"),
    ({"match_all": {}}, {"t": {"terms": {"field": "type"}, "aggs": {}, "aggregations": {}}},
     "aggs.t"),
]  # fmt: skip


@pytest.mark.parametrize(("query_part", "aggs", "path"), MALFORMED, ids=[p for *_, p in MALFORMED])
def test_it_refuses_malformed_queries_and_aggregations_naming_the_path(query_part, aggs, path):
    from history.fence import parse_query_body
    from kernel.errors import ValidationError

    body = {"query": query_part, **({"aggs": aggs} if aggs is not None else {})}
    with pytest.raises(ValidationError) as refused:
        parse_query_body(body, may_aggregate=True)
    assert refused.value.details == {"field": path}
