"""Search filters as Elasticsearch queries (elasticsearch-dsl ``Q`` objects).

The same semantics as ``Filters.matches`` and the SQLite history: exact
values as ``term``, ``prefix*`` as ``prefix``, other ``*`` patterns as
``wildcard``; full text as an AND ``match`` on ``@text``; the read rule of
``Caller.can_read`` as a filter, so that pages are never short.
"""

from __future__ import annotations

from datetime import UTC, datetime

from elasticsearch_dsl import Q
from elasticsearch_dsl.query import Query

from events.filters import Filters, words
from history.base import SearchQuery
from history.elastic_mapping import WRAPPED_KEY
from kernel.caller import Caller
from kernel.errors import ValidationError


def _escape_wildcard(text: str) -> str:
    return text.replace("\\", "\\\\").replace("?", "\\?")


def pattern_query(field: str, pattern: str) -> Query:
    """One value pattern on one field (``*`` matches any run of characters)."""
    if "*" not in pattern:
        return Q("term", **{field: pattern})
    if pattern.endswith("*") and "*" not in pattern[:-1]:
        return Q("prefix", **{field: pattern[:-1]})
    escaped = "*".join(_escape_wildcard(part) for part in pattern.split("*"))
    return Q("wildcard", **{field: {"value": escaped}})


def field_name(path: str) -> str:
    """The indexed field of a filter's dotted path."""
    if path == "payload":
        return f"payload.{WRAPPED_KEY}"
    if path.startswith("createdAt.") or path in ("source", "target", "options", "error"):
        raise ValidationError(f"{path!r} is not a field with a value", details={"field": path})
    return path


def _field_query(path: str, patterns: tuple[str, ...]) -> Query:
    field = field_name(path)
    if field == "createdAt" and any("*" in p for p in patterns):
        raise ValidationError("createdAt takes exact dates; use afterDate and beforeDate")
    return _any([pattern_query(field, p) for p in patterns])


def _any(queries: list[Query]) -> Query:
    return queries[0] if len(queries) == 1 else Q("bool", should=queries, minimum_should_match=1)


def _text_query(texts: tuple[str, ...]) -> Query:
    matches = [
        Q("match", **{"@text": {"query": " ".join(words(t)), "operator": "and"}}) for t in texts
    ]
    return _any(matches)


def filters_queries(filters: Filters) -> list[Query]:
    """The filter clauses of a Filters (all must match)."""
    clauses: list[Query] = []
    if filters.types:
        clauses.append(_any([pattern_query("type", t) for t in filters.types]))
    clauses.extend(_field_query(path, patterns) for path, patterns in filters.fields)
    if filters.texts:
        clauses.append(_text_query(filters.texts))
    return clauses


def readable_queries(caller: Caller) -> list[Query]:
    """The read rule as filter clauses (none for callers that read everything)."""
    if caller.reads_everything:
        return []
    allowed = [Q("term", **{"@targeted": False}), Q("term", **{"target.userId": caller.user_id})]
    if caller.session_id:
        allowed.append(Q("term", **{"target.sessionId": caller.session_id}))
    return [Q("bool", should=allowed, minimum_should_match=1)]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def date_queries(query: SearchQuery) -> list[Query]:
    """``afterDate`` / ``beforeDate`` (both exclusive) as a range."""
    bounds = {}
    if query.after_date:
        bounds["gt"] = _iso(query.after_date)
    if query.before_date:
        bounds["lt"] = _iso(query.before_date)
    return [Q("range", createdAt=bounds)] if bounds else []


def fence_queries(workspace_id: str, caller: Caller) -> list[Query]:
    """What every search of a caller is held to: its workspace and the read rule."""
    return [Q("term", **{"source.workspaceId": workspace_id}), *readable_queries(caller)]


def search_queries(query: SearchQuery) -> list[Query]:
    """Every filter clause of a SearchQuery."""
    fence = fence_queries(query.workspace_id, query.caller)
    return [*fence, *filters_queries(query.filters), *date_queries(query)]
