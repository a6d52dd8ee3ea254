"""Search: the services behind ``GET .../events`` and ``POST .../search``.

Plain functions with keyword-only arguments: parse, ask the history, record
the ``events.searched`` audit event, and shape the answer. A history that does
not answer is the client's 503, never a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from events.realtime.publishing import record_action
from history import get_history
from history.base import HistoryUnavailable
from history.fence import parse_query_body
from history.query import parse_search
from kernel import outages
from kernel.caller import AGGREGATE, Caller
from kernel.context import RequestContext
from kernel.errors import NotImplementedByHistory, ServiceUnavailable

SEARCHED = "events.searched"
T = TypeVar("T")


async def _answer(call: Awaitable[T], where: str) -> T:
    try:
        result = await call
    except HistoryUnavailable as exc:
        outages.failed(outages.HISTORY, exc, where)  # one stack per outage
        raise ServiceUnavailable("the history does not answer; try again") from exc
    outages.answered(outages.HISTORY)
    return result


async def search_events(
    *,
    workspace_id: str,
    caller: Caller,
    params: Mapping[str, list[str]],
    context: RequestContext,
) -> dict[str, Any]:
    """One page of a filter search: ``{"events": [...], "next": cursor or None}``."""
    query = parse_search(params, workspace_id=workspace_id, caller=caller)
    page = await _answer(get_history().search(query), f"a search of {workspace_id}")
    audit = {"endpoint": "events", "filters": dict(params)}
    await record_action(workspace_id, SEARCHED, audit, caller=caller, context=context)
    next_cursor = page.next_after_id or None  # a page ends at an event: its id is the cursor
    return {"events": page.events, "next": next_cursor}


async def search_query_body(
    *, workspace_id: str, caller: Caller, body: Any, context: RequestContext
) -> dict[str, Any]:
    """A fenced Elasticsearch query: ``{"size": n, "documents": [...], "aggs": {...}}``."""
    history = get_history()
    if not history.takes_query_bodies:
        raise NotImplementedByHistory(
            "query bodies need the Elasticsearch history; use GET .../events with filters"
        )
    checked = parse_query_body(body, may_aggregate=caller.can(AGGREGATE))
    result = await _answer(
        history.search_raw(workspace_id, caller, checked), f"a query of {workspace_id}"
    )
    audit = {"endpoint": "search", "query": checked.query, "aggs": sorted(checked.aggs or {})}
    await record_action(workspace_id, SEARCHED, audit, caller=caller, context=context)
    return result
