"""The query body of ``POST .../search``: what a caller may ask Elasticsearch.

A body holds ``query``, ``sort``, ``limit`` and ``aggs`` only. Nothing in it
may run code or reach outside the workspace's index: scripts, runtime fields,
encoded (``wrapper``) queries, lookups in other indices, and aggregations
that ignore the query (``global``, background sets) are refused anywhere in
the body. The history then wraps ``query`` in a bool whose filters hold the
workspace and the read rule, so the caller's query can only narrow them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from events.errors import PermissionDenied, ValidationError
from history.query import DEFAULT_LIMIT, MAX_LIMIT

BODY_KEYS = ("query", "sort", "limit", "aggs")
AGG_KEYS = ("aggs", "aggregations")
FORBIDDEN_KEYS = frozenset(
    {
        "script", "scripts", "script_score", "script_fields", "scripted_metric",
        "runtime_mappings", "bucket_script", "bucket_selector", "wrapper", "percolate",
        "more_like_this", "index", "_index", "indices", "global", "significant_terms",
        "significant_text", "stored_fields",
    }
)  # fmt: skip
MAX_AGG_DEPTH = 3
MAX_AGGS = 20


@dataclass(frozen=True)
class QueryBody:
    """A checked query body."""

    query: dict[str, Any]
    sort: list[Any] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT
    aggs: dict[str, Any] | None = None


def _keys(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every ``(key, path)`` of the objects in a JSON value, depth first."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield str(key), where
            yield from _keys(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _keys(item, f"{path}[{index}]")


def forbidden_key(value: Any) -> str | None:
    """The path of the first forbidden key anywhere in a JSON value, if any."""
    return next((where for key, where in _keys(value) if key.lower() in FORBIDDEN_KEYS), None)


def _check_aggs(aggs: Any, depth: int) -> None:
    if not isinstance(aggs, dict) or not all(isinstance(a, dict) for a in aggs.values()):
        raise ValidationError("aggs must be an object of named aggregations")
    if depth > MAX_AGG_DEPTH:
        raise ValidationError(f"aggregations nest at most {MAX_AGG_DEPTH} levels deep")


def count_aggs(aggs: Any, depth: int = 1) -> int:
    """How many aggregations a tree holds; ValidationError past the depth limit."""
    _check_aggs(aggs, depth)
    subs = [agg[key] for agg in aggs.values() for key in AGG_KEYS if key in agg]
    return len(aggs) + sum(count_aggs(sub, depth + 1) for sub in subs)


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise ValidationError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return value


def _sort(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list | dict | str):
        raise ValidationError("sort must be a field name, an object or a list of them")
    return value if isinstance(value, list) else [value]


def _aggs(body: dict[str, Any], *, may_aggregate: bool) -> dict[str, Any] | None:
    aggs = body.get("aggs")
    if aggs is None:
        return None
    if not may_aggregate:
        raise PermissionDenied("only the workspace's owners may use aggregations")
    if count_aggs(aggs) > MAX_AGGS:
        raise ValidationError(f"at most {MAX_AGGS} aggregations per search")
    return aggs


def parse_query_body(body: Any, *, may_aggregate: bool) -> QueryBody:
    """Check a query body; ValidationError (or PermissionDenied for aggs) explains why not."""
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise ValidationError(f"unknown keys {unknown}; a body holds {list(BODY_KEYS)}")
    where = forbidden_key(body)
    if where:
        raise ValidationError(f"{where} is not allowed in a search", details={"field": where})
    query = body.get("query") or {"match_all": {}}
    if not isinstance(query, dict):
        raise ValidationError("query must be an Elasticsearch query object")
    return QueryBody(
        query=query,
        sort=_sort(body.get("sort")),
        limit=_limit(body.get("limit")),
        aggs=_aggs(body, may_aggregate=may_aggregate),
    )
