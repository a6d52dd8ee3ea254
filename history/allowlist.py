"""What a query body may hold: an allow-list of Elasticsearch queries and aggregations.

Anything that is not listed here is refused with a ValidationError naming its
path (``details: {"field": "query.bool.must[0].terms_set"}``), so a script or
an expensive query under a name nobody thought of cannot get through. Each
query and aggregation type has its allowed parameters and bounds: sizes,
clause counts, wildcard patterns, histogram intervals, the nesting of ``bool``.
The documented DSL is the reference (Elasticsearch 8, "Query DSL" and
"Aggregations"); what is allowed is a small, cheap subset of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kernel.errors import ValidationError

MAX_QUERY_DEPTH = 10  # compound queries (bool, constant_score) inside each other
MAX_QUERY_NODES = 200  # queries in one body, over every clause list and filter
MAX_CLAUSES = 50  # queries in one bool clause list, or in a filters aggregation
MAX_TERMS = 100  # values of a terms or ids query
MAX_TEXT_CHARS = 1024  # a query's text or value
MAX_NAME_CHARS = 256  # a field name, a format, an aggregation's name
MAX_PATTERN_CHARS = 256  # a wildcard or prefix pattern
MAX_WILDCARDS = 4  # ``*`` and ``?`` in one wildcard pattern
MAX_FIELDS = 10  # fields of a multi_match
MAX_SLOP = 10  # match_phrase slop
MAX_TERMS_SIZE = 100  # buckets of a terms aggregation
MAX_TOP_HITS = 10  # documents of a top_hits aggregation
MAX_RANGES = 20  # ranges of a range or date_range aggregation
MIN_FIXED_INTERVAL_MS = 60_000  # a date_histogram bucket is at least a minute wide
MAX_PRECISION = 40_000  # cardinality precision_threshold (Elasticsearch's own maximum)
MAX_SORT_KEYS = 5  # fields of a sort
SORT_PARAMS = frozenset({"order", "missing", "unmapped_type"})

Check = Callable[["Checker", Any, str], None]
SCALAR = str | int | float | bool
INTERVAL = re.compile(r"([0-9]{1,9})(ms|s|m|h|d)")
UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
CALENDAR = frozenset(
    {"minute", "1m", "hour", "1h", "day", "1d", "week", "1w", "month", "1M",
     "quarter", "1q", "year", "1y"}
)  # fmt: skip


def refuse(path: str, why: str) -> ValidationError:
    """The error for what is not allowed at ``path``."""
    return ValidationError(f"{path}: {why}", details={"field": path})


def check_object(value: Any, path: str, allowed: frozenset[str] | set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise refuse(path, "must be an object")
    for key in value:
        if key not in allowed:
            raise refuse(f"{path}.{key}", f"is not allowed here; allowed: {sorted(allowed)}")
    return value


def check_text(value: Any, path: str, most: int = MAX_TEXT_CHARS) -> None:
    if not isinstance(value, SCALAR) or (isinstance(value, str) and len(value) > most):
        raise refuse(path, f"must be a number, a boolean or a string of at most {most} characters")


def check_name(value: Any, path: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_CHARS:
        raise refuse(path, f"must be a name of 1 to {MAX_NAME_CHARS} characters")


def check_whole(value: Any, path: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise refuse(path, f"must be a whole number from {low} to {high}")


def check_one_of(value: Any, path: str, choices: frozenset[str] | tuple[str, ...]) -> None:
    if value not in choices:
        raise refuse(path, f"must be one of {sorted(choices)}")


def check_number(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise refuse(path, "must be a number of at least 0")


def _minimum_should_match(value: Any, path: str) -> None:
    if isinstance(value, str):
        if not re.fullmatch(r"-?[0-9]{1,3}%?", value):
            raise refuse(path, "must be a count or a percentage such as 75%")
        return
    check_whole(value, path, -MAX_CLAUSES, MAX_CLAUSES)


def _wildcard_pattern(value: Any, path: str) -> None:
    check_text(value, path, MAX_PATTERN_CHARS)
    if not isinstance(value, str):
        raise refuse(path, "must be a string")
    if value.count("*") + value.count("?") > MAX_WILDCARDS:
        raise refuse(path, f"at most {MAX_WILDCARDS} '*' or '?' per pattern")


# --- leaf queries: {"term": {"<field>": value or {params}}} -------------------------

LEAF_PARAMS: dict[str, dict[str, Callable[[Any, str], None]]] = {
    "term": {
        "value": check_text,
        "boost": check_number,
        "case_insensitive": lambda v, p: check_bool(v, p),
    },
    "match": {
        "query": check_text,
        "operator": lambda v, p: check_one_of(v, p, ("and", "or", "AND", "OR")),
        "minimum_should_match": _minimum_should_match,
        "boost": check_number,
    },
    "match_phrase": {
        "query": check_text,
        "slop": lambda v, p: check_whole(v, p, 0, MAX_SLOP),
        "boost": check_number,
    },
    "prefix": {
        "value": lambda v, p: check_text(v, p, MAX_PATTERN_CHARS),
        "boost": check_number,
        "case_insensitive": lambda v, p: check_bool(v, p),
    },
    "wildcard": {
        "value": _wildcard_pattern,
        "boost": check_number,
        "case_insensitive": lambda v, p: check_bool(v, p),
    },
}
SHORT_FORM: dict[str, Callable[[Any, str], None]] = {
    "term": check_text,
    "match": check_text,
    "match_phrase": check_text,
    "prefix": lambda v, p: check_text(v, p, MAX_PATTERN_CHARS),
    "wildcard": _wildcard_pattern,
}
LEAF_REQUIRED = {"term": "value", "match": "query", "match_phrase": "query", "prefix": "value"}
LEAF_REQUIRED["wildcard"] = "value"
RANGE_PARAMS: dict[str, Callable[[Any, str], None]] = {
    "gt": check_text,
    "gte": check_text,
    "lt": check_text,
    "lte": check_text,
    "format": lambda v, p: check_name(v, p),
    "time_zone": lambda v, p: check_name(v, p),
    "boost": check_number,
}


def check_bool(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise refuse(path, "must be true or false")


def _single_field(value: Any, path: str) -> tuple[str, Any]:
    if not isinstance(value, dict) or len(value) != 1:
        raise refuse(path, "must name exactly one field")
    [(field, params)] = value.items()
    check_name(field, f"{path}.{field}")
    return field, params


def _params(value: Any, path: str, allowed: dict[str, Callable[[Any, str], None]]) -> None:
    for key, item in check_object(value, path, set(allowed)).items():
        allowed[key](item, f"{path}.{key}")


class Checker:
    """Walks one query body, counting queries, refusing what the allow-list lacks."""

    def __init__(self) -> None:
        self.nodes = 0

    def query(self, value: Any, path: str, depth: int = 1) -> None:
        """One query object: exactly one allowed query type."""
        if not isinstance(value, dict) or len(value) != 1:
            raise refuse(path, "must be an object naming one query type, such as term")
        self.nodes += 1
        if self.nodes > MAX_QUERY_NODES:
            raise refuse(path, f"a body holds at most {MAX_QUERY_NODES} queries")
        [(kind, params)] = value.items()
        where = f"{path}.{kind}"
        if kind in COMPOUND:
            if depth > MAX_QUERY_DEPTH:
                raise refuse(where, f"queries nest at most {MAX_QUERY_DEPTH} levels deep")
            COMPOUND[kind](self, params, where, depth)
        elif kind in LEAF:
            LEAF[kind](self, params, where)
        else:
            raise refuse(where, "is not an allowed query type")

    def clauses(self, value: Any, path: str, depth: int) -> None:
        """A bool clause: one query or a list of them."""
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_CLAUSES:
            raise refuse(path, f"at most {MAX_CLAUSES} queries")
        for index, item in enumerate(items):
            self.query(item, f"{path}[{index}]" if isinstance(value, list) else path, depth + 1)


def _bool_query(checker: Checker, value: Any, path: str, depth: int) -> None:
    params = check_object(value, path, {"must", "should", "filter", "must_not", *BOOL_EXTRAS})
    for key, item in params.items():
        if key in BOOL_EXTRAS:
            BOOL_EXTRAS[key](item, f"{path}.{key}")
        else:
            checker.clauses(item, f"{path}.{key}", depth)


BOOL_EXTRAS: dict[str, Callable[[Any, str], None]] = {
    "minimum_should_match": _minimum_should_match,
    "boost": check_number,
}


def _constant_score(checker: Checker, value: Any, path: str, depth: int) -> None:
    params = check_object(value, path, {"filter", "boost"})
    if "filter" not in params:
        raise refuse(path, "needs a filter")
    checker.query(params["filter"], f"{path}.filter", depth + 1)
    if "boost" in params:
        check_number(params["boost"], f"{path}.boost")


def _leaf(kind: str) -> Check:
    def check(checker: Checker, value: Any, path: str) -> None:
        field, params = _single_field(value, path)
        where = f"{path}.{field}"
        if not isinstance(params, dict) and kind in SHORT_FORM:
            SHORT_FORM[kind](params, where)
            return
        if not isinstance(params, dict):
            raise refuse(where, "must be an object")
        if LEAF_REQUIRED[kind] not in params:
            raise refuse(where, f"needs {LEAF_REQUIRED[kind]}")
        _params(params, where, LEAF_PARAMS[kind])

    return check


def _terms(checker: Checker, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise refuse(path, "must be an object")
    params = value
    fields = [k for k in params if k != "boost"]
    if len(fields) != 1:
        raise refuse(path, "must name exactly one field")
    if "boost" in params:
        check_number(params["boost"], f"{path}.boost")
    _values(params[fields[0]], f"{path}.{fields[0]}")


def _values(value: Any, path: str) -> None:
    if not isinstance(value, list) or len(value) > MAX_TERMS:
        raise refuse(path, f"must be a list of at most {MAX_TERMS} values")
    for index, item in enumerate(value):
        check_text(item, f"{path}[{index}]")


def _range(checker: Checker, value: Any, path: str) -> None:
    field, params = _single_field(value, path)
    _params(params, f"{path}.{field}", RANGE_PARAMS)


def _exists(checker: Checker, value: Any, path: str) -> None:
    check_name(check_object(value, path, {"field"}).get("field"), f"{path}.field")


def _ids(checker: Checker, value: Any, path: str) -> None:
    _values(check_object(value, path, {"values"}).get("values"), f"{path}.values")


def _match_all(checker: Checker, value: Any, path: str) -> None:
    _params(value, path, {"boost": check_number})


def _match_none(checker: Checker, value: Any, path: str) -> None:
    check_object(value, path, set())


def _multi_match(checker: Checker, value: Any, path: str) -> None:
    params = check_object(value, path, set(MULTI_MATCH))
    if "query" not in params:
        raise refuse(path, "needs query")
    _params(params, path, MULTI_MATCH)


def _fields(value: Any, path: str) -> None:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_FIELDS:
        raise refuse(path, f"must be a list of 1 to {MAX_FIELDS} field names")
    for index, item in enumerate(value):
        check_name(item, f"{path}[{index}]")


MULTI_MATCH: dict[str, Callable[[Any, str], None]] = {
    "query": check_text,
    "fields": _fields,
    "type": lambda v, p: check_one_of(
        v, p, ("best_fields", "most_fields", "cross_fields", "phrase")
    ),
    "operator": lambda v, p: check_one_of(v, p, ("and", "or", "AND", "OR")),
    "minimum_should_match": _minimum_should_match,
    "tie_breaker": check_number,
    "boost": check_number,
}
COMPOUND: dict[str, Callable[[Checker, Any, str, int], None]] = {
    "bool": _bool_query,
    "constant_score": _constant_score,
}
LEAF: dict[str, Check] = {
    **{kind: _leaf(kind) for kind in LEAF_PARAMS},
    "terms": _terms,
    "range": _range,
    "exists": _exists,
    "ids": _ids,
    "match_all": _match_all,
    "match_none": _match_none,
    "multi_match": _multi_match,
}


# --- sort: of the body and of top_hits ---------------------------------------------


def check_sort(value: Any, path: str) -> None:
    """A sort: field names, or ``{field: "asc"/"desc" or {"order", "missing", ...}}``."""
    items = value if isinstance(value, list) else [value]
    if not isinstance(value, list | dict | str) or len(items) > MAX_SORT_KEYS:
        raise refuse(path, f"must be a field name, an object or a list of at most {MAX_SORT_KEYS}")
    for index, item in enumerate(items):
        _sort_key(item, f"{path}[{index}]" if isinstance(value, list) else path)


def _sort_key(item: Any, path: str) -> None:
    if isinstance(item, str):
        _field(item, path)
        return
    if not isinstance(item, dict) or len(item) != 1:
        raise refuse(path, "must be a field name or an object naming one field")
    [(name, how)] = item.items()
    where = f"{path}.{name}"
    _field(name, where)
    if isinstance(how, str):
        check_one_of(how, where, ("asc", "desc"))
        return
    for key, param in check_object(how, where, SORT_PARAMS).items():
        if key == "order":
            check_one_of(param, f"{where}.order", ("asc", "desc"))
        else:
            check_name(param, f"{where}.{key}")


def _field(name: Any, path: str) -> None:
    """A field to sort on: a name, not one of Elasticsearch's special sorts (``_script``)."""
    check_name(name, path)
    if name.startswith("_") and name not in ("_score", "_doc"):
        raise refuse(path, "is not an allowed sort")
