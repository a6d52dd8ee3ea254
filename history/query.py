"""Search parameters: the query string of ``GET .../events`` turned into a SearchQuery.

Paging keys (``limit``, ``sort``, ``cursor``) and dates (``afterDate``,
``beforeDate``) are read here; every other key is a filter, parsed by
``events.filters.parse_filters`` exactly as for live consumers. The cursor is
opaque to clients: the id of the last event of the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from events.filters import parse_filters
from history.base import ASC, DEFAULT_LIMIT, DESC, MAX_LIMIT, SearchQuery
from kernel.caller import Caller
from kernel.errors import ValidationError
from kernel.ids import normalize_id

PAGING_KEYS = ("limit", "sort", "cursor", "afterDate", "beforeDate")


def decode_cursor(cursor: str) -> str:
    """The event id a cursor continues after; ValidationError if it is not one."""
    try:
        return normalize_id(cursor)
    except ValidationError:
        raise ValidationError(
            "cursor is not a cursor of this API", details={"field": "cursor"}
        ) from None


def parse_date(name: str, value: str) -> datetime:
    """An ISO 8601 moment (UTC when no offset is given)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(
            f"{name} must be an ISO 8601 date, such as 2026-11-28T02:00:00Z",
            details={"field": name},
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_limit(value: str | None) -> int:
    """The page size: 1 to 500, 50 by default."""
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(
            f"limit must be a whole number from 1 to {MAX_LIMIT}", details={"field": "limit"}
        )
    return limit


def parse_sort(value: str | None) -> str:
    """``desc`` (newest first, the default) or ``asc``."""
    sort = (value or DESC).lower()
    if sort not in (ASC, DESC):
        raise ValidationError("sort must be asc or desc", details={"field": "sort"})
    return sort


def _single(params: Mapping[str, list[str]], key: str) -> str | None:
    values = params.get(key) or []
    if len(values) > 1:
        raise ValidationError(f"{key} may be given once", details={"field": key})
    return values[0] if values else None


def parse_search(
    params: Mapping[str, list[str]], *, workspace_id: str, caller: Caller
) -> SearchQuery:
    """Build the SearchQuery of a query string (key -> list of values)."""
    after_date, before_date = _single(params, "afterDate"), _single(params, "beforeDate")
    cursor = _single(params, "cursor")
    return SearchQuery(
        workspace_id=workspace_id,
        caller=caller,
        filters=parse_filters(params, ignore=PAGING_KEYS),
        after_date=parse_date("afterDate", after_date) if after_date else None,
        before_date=parse_date("beforeDate", before_date) if before_date else None,
        limit=parse_limit(_single(params, "limit")),
        sort=parse_sort(_single(params, "sort")),
        after_id=decode_cursor(cursor) if cursor else None,
    )
