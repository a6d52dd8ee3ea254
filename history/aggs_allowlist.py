"""The aggregations a query body may hold (owners only): an allow-list, with bounds.

Each named aggregation holds exactly one allowed type with its allowed
parameters, and optionally ``aggs`` (sub-aggregations, at most three levels,
twenty in all). Sizes are bounded (``terms`` 100 buckets, ``top_hits`` 10
documents), a ``date_histogram`` bucket is at least a minute wide, and
``min_doc_count`` 0 or ``extended_bounds`` (which make empty buckets by the
million) are not allowed. Anything else is refused, naming its path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from history.allowlist import (
    CALENDAR,
    INTERVAL,
    MAX_CLAUSES,
    MAX_PRECISION,
    MAX_RANGES,
    MAX_TERMS_SIZE,
    MAX_TOP_HITS,
    MIN_FIXED_INTERVAL_MS,
    UNIT_MS,
    Checker,
    check_bool,
    check_name,
    check_number,
    check_object,
    check_one_of,
    check_sort,
    check_text,
    check_whole,
    refuse,
)

MAX_AGG_DEPTH = 3
MAX_AGGS = 20
SUB_AGGS = ("aggs", "aggregations")
Param = Callable[[Any, str], None]


def _order(value: Any, path: str) -> None:
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        where = f"{path}[{index}]" if isinstance(value, list) else path
        if not isinstance(item, dict) or len(item) != 1:
            raise refuse(where, 'must be an object such as {"_count": "desc"}')
        [(key, direction)] = item.items()
        check_name(key, f"{where}.{key}")
        check_one_of(direction, f"{where}.{key}", ("asc", "desc"))


def _min_doc_count(value: Any, path: str) -> None:
    check_whole(value, path, 1, 1_000_000_000)


def _fixed_interval(value: Any, path: str) -> None:
    found = INTERVAL.fullmatch(value) if isinstance(value, str) else None
    if not found or int(found.group(1)) * UNIT_MS[found.group(2)] < MIN_FIXED_INTERVAL_MS:
        raise refuse(path, "must be an interval of at least a minute, such as 5m, 1h or 1d")


def _calendar_interval(value: Any, path: str) -> None:
    check_one_of(value, path, CALENDAR)


def _interval(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise refuse(path, "must be a number greater than 0")


def _ranges(value: Any, path: str) -> None:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_RANGES:
        raise refuse(path, f"must be a list of 1 to {MAX_RANGES} ranges")
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        for key, bound in check_object(item, where, {"from", "to", "key"}).items():
            check_text(bound, f"{where}.{key}")


FIELD_ONLY: dict[str, Param] = {"field": check_name, "format": check_name, "missing": check_text}
TERMS: dict[str, Param] = {
    "field": check_name,
    "size": lambda v, p: check_whole(v, p, 1, MAX_TERMS_SIZE),
    "order": _order,
    "min_doc_count": _min_doc_count,
    "missing": check_text,
}
DATE_HISTOGRAM: dict[str, Param] = {
    "field": check_name,
    "fixed_interval": _fixed_interval,
    "calendar_interval": _calendar_interval,
    "format": check_name,
    "time_zone": check_name,
    "min_doc_count": _min_doc_count,
    "order": _order,
}
HISTOGRAM: dict[str, Param] = {
    "field": check_name,
    "interval": _interval,
    "min_doc_count": _min_doc_count,
    "offset": check_number,
    "order": _order,
}
RANGE: dict[str, Param] = {
    "field": check_name,
    "ranges": _ranges,
    "keyed": check_bool,
    "format": check_name,
}
PARAMS: dict[str, dict[str, Param]] = {
    "terms": TERMS,
    "date_histogram": DATE_HISTOGRAM,
    "histogram": HISTOGRAM,
    "range": RANGE,
    "date_range": RANGE,
    "cardinality": {
        "field": check_name,
        "precision_threshold": lambda v, p: check_whole(v, p, 0, MAX_PRECISION),
    },
    **dict.fromkeys(("min", "max", "avg", "sum", "value_count", "stats"), FIELD_ONLY),
    "top_hits": {"size": lambda v, p: check_whole(v, p, 1, MAX_TOP_HITS), "sort": check_sort},
}
NEEDS_FIELD = frozenset(PARAMS) - {"top_hits"}
INTERVALS = ("fixed_interval", "calendar_interval")


def _params_of(kind: str, params: Any, path: str) -> None:
    for key, item in check_object(params, path, set(PARAMS[kind])).items():
        PARAMS[kind][key](item, f"{path}.{key}")
    if kind in NEEDS_FIELD and "field" not in params:
        raise refuse(path, "needs field")
    if kind == "date_histogram" and sum(k in params for k in INTERVALS) != 1:
        raise refuse(path, "needs one of fixed_interval or calendar_interval")
    if kind == "histogram" and "interval" not in params:
        raise refuse(path, "needs interval")


def _filter_agg(params: Any, path: str) -> None:
    Checker().query(params, path)


def _filters_agg(params: Any, path: str) -> None:
    filters = check_object(params, path, {"filters"}).get("filters")
    where = f"{path}.filters"
    if not isinstance(filters, dict | list) or not 0 < len(filters) <= MAX_CLAUSES:
        raise refuse(where, f"must hold 1 to {MAX_CLAUSES} queries")
    named = filters.items() if isinstance(filters, dict) else enumerate(filters)
    checker = Checker()
    for name, query in named:
        checker.query(query, f"{where}.{name}" if isinstance(filters, dict) else f"{where}[{name}]")


BUCKET_QUERIES: dict[str, Param] = {"filter": _filter_agg, "filters": _filters_agg}


def check_aggs(aggs: Any, path: str = "aggs", depth: int = 1) -> int:
    """Check an aggregation tree; return how many aggregations it holds."""
    if not isinstance(aggs, dict) or not aggs:
        raise refuse(path, "must be an object of named aggregations")
    if depth > MAX_AGG_DEPTH:
        raise refuse(path, f"aggregations nest at most {MAX_AGG_DEPTH} levels deep")
    count = len(aggs)
    for name, agg in aggs.items():
        check_name(name, f"{path}.{name}")
        count += _check_agg(agg, f"{path}.{name}", depth)
    if count > MAX_AGGS:
        raise refuse(path, f"at most {MAX_AGGS} aggregations per search")
    return count


def _check_kind(kind: str, params: Any, path: str) -> None:
    if kind in BUCKET_QUERIES:
        BUCKET_QUERIES[kind](params, path)
    elif kind in PARAMS:
        _params_of(kind, params, path)
    else:
        raise refuse(path, "is not an allowed aggregation type")


def _check_agg(agg: Any, path: str, depth: int) -> int:
    """One named aggregation: one allowed type, and its sub-aggregations' count."""
    if not isinstance(agg, dict):
        raise refuse(path, "must be an object naming one aggregation type, such as terms")
    kinds = [key for key in agg if key not in SUB_AGGS]
    if len(kinds) != 1:
        raise refuse(path, "must name exactly one aggregation type")
    _check_kind(kinds[0], agg[kinds[0]], f"{path}.{kinds[0]}")
    subs = [key for key in SUB_AGGS if key in agg]
    if len(subs) > 1:
        raise refuse(path, "give aggs or aggregations, not both")
    return sum(check_aggs(agg[key], f"{path}.{key}", depth + 1) for key in subs)
