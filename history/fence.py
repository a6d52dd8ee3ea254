"""The query body of ``POST .../search``: what a caller may ask Elasticsearch.

A body holds ``query``, ``sort``, ``limit`` and ``aggs`` only, and each is held
to an allow-list (:mod:`history.allowlist` for queries, :mod:`history.aggs_allowlist`
for aggregations): a query or aggregation type that is not listed, or a
parameter it does not allow, is refused with a 400 naming its path. Nothing
listed runs code or reaches outside the workspace's index; sizes, clause counts,
wildcards and histogram intervals are bounded. The history then wraps ``query``
in a bool whose filters hold the workspace and the read rule, so the caller's
query can only narrow them.
"""

from __future__ import annotations

from typing import Any

from history.aggs_allowlist import check_aggs
from history.allowlist import Checker, check_sort, refuse
from history.base import DEFAULT_LIMIT, MAX_LIMIT, QueryBody
from kernel.errors import PermissionDenied, ValidationError

BODY_KEYS = ("query", "sort", "limit", "aggs")


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise refuse("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return value


def _sort(value: Any) -> list[Any]:
    if value is None:
        return []
    check_sort(value, "sort")
    return value if isinstance(value, list) else [value]


def _aggs(body: dict[str, Any], *, may_aggregate: bool) -> dict[str, Any] | None:
    aggs = body.get("aggs")
    if aggs is None:
        return None
    if not may_aggregate:
        raise PermissionDenied("only the workspace's owners may use aggregations")
    check_aggs(aggs)
    return aggs


def parse_query_body(body: Any, *, may_aggregate: bool) -> QueryBody:
    """Check a query body; ValidationError (or PermissionDenied for aggs) explains why not."""
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise refuse(unknown[0], f"is not allowed; a body holds {list(BODY_KEYS)}")
    query = body.get("query") or {"match_all": {}}
    Checker().query(query, "query")
    return QueryBody(
        query=query,
        sort=_sort(body.get("sort")),
        limit=_limit(body.get("limit")),
        aggs=_aggs(body, may_aggregate=may_aggregate),
    )
