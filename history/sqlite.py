"""The embedded history: events in this service's SQLite database.

Every filter runs in SQL, so pages are never short: types, dates, the cursor
and the read rule on indexed columns (``*`` patterns of types through the SQL
function ``events_glob``); full text as ``' word '`` containment in a column of
the event's words; field filters through ``events_field`` over a column holding
one escaped ``path=value`` line per leaf. Both columns are computed by
:mod:`history.documents` with the same rules as live matching, and both SQL
functions match with :class:`events.glob.Glob` (:mod:`history.sqlite_functions`):
no regular expression is built from a filter.
"""

from __future__ import annotations

import logging
from datetime import datetime

import orjson
from asgiref.sync import sync_to_async
from django.db import DatabaseError
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from events.event import Envelope, iso_from_ms
from events.filters import Filters, words
from history.base import ASC, History, HistoryUnavailable, SearchPage, SearchQuery
from history.documents import envelope_fields, event_words, is_targeted, target_value
from history.models import StoredEvent
from history.sqlite_functions import FieldMatches, GlobMatches, escape_line
from kernel.caller import Caller
from kernel.ids import timestamp_ms

logger = logging.getLogger("history.sqlite")
STORE_CHUNK = 500


def fields_column(envelope: Envelope) -> str:
    """The ``fields`` column: ``\\npath=value\\n`` for every leaf."""
    lines = [f"{escape_line(p)}={escape_line(v)}" for p, v in envelope_fields(envelope)]
    return "\n" + "\n".join(lines) + "\n"


def _created_at(envelope: Envelope) -> datetime:
    moment = parse_datetime(str(envelope.get("createdAt", "")))
    if moment is None:
        moment = parse_datetime(iso_from_ms(timestamp_ms(envelope["id"])))
    return moment  # type: ignore[return-value]


def row_for(envelope: Envelope) -> StoredEvent:
    """The row that stores an envelope."""
    return StoredEvent(
        workspace_id=envelope["source"]["workspaceId"],
        event_id=envelope["id"],
        type=envelope["type"],
        created_at=_created_at(envelope),
        targeted=is_targeted(envelope),
        target_user_id=target_value(envelope, "userId") or "",
        target_session_id=target_value(envelope, "sessionId") or "",
        words=" " + " ".join(event_words(envelope)) + " ",
        fields=fields_column(envelope),
        body=orjson.dumps(envelope).decode(),
    )


def _types_q(types: tuple[str, ...]) -> Q:
    exact = [t for t in types if "*" not in t]
    q = Q(type__in=exact) if exact else Q(pk__in=[])
    for pattern in (t for t in types if "*" in t):
        q |= Q(GlobMatches("type", pattern))
    return q


def _text_q(texts: tuple[str, ...]) -> Q:
    q = Q(pk__in=[])
    for text in texts:
        every = Q()
        for word in words(text):
            every &= Q(words__contains=f" {word} ")
        q |= every
    return q


def filters_q(filters: Filters) -> Q:
    """The WHERE clause of a Filters (AND of types, fields and text)."""
    q = Q()
    if filters.types:
        q &= _types_q(filters.types)
    for path, patterns in filters.fields:
        q &= Q(FieldMatches(path, patterns))
    if filters.texts:
        q &= _text_q(filters.texts)
    return q


def readable_q(caller: Caller) -> Q:
    """The read rule of ``Caller.can_read`` as a WHERE clause."""
    if caller.reads_everything:
        return Q()
    q = Q(targeted=False) | Q(target_user_id=caller.user_id)
    if caller.session_id:
        q |= Q(target_session_id=caller.session_id)
    return q


def search_queryset(query: SearchQuery) -> QuerySet[StoredEvent]:
    """The rows of a page, in order, one more than the limit (to know if more follow)."""
    rows = StoredEvent.objects.filter(workspace_id=query.workspace_id)
    rows = rows.filter(filters_q(query.filters), readable_q(query.caller))
    if query.after_date:
        rows = rows.filter(created_at__gt=query.after_date)
    if query.before_date:
        rows = rows.filter(created_at__lt=query.before_date)
    ascending = query.sort == ASC
    if query.after_id:
        key = "event_id__gt" if ascending else "event_id__lt"
        rows = rows.filter(**{key: query.after_id})
    order = "event_id" if ascending else "-event_id"
    return rows.order_by(order).only("event_id", "body")[: query.limit + 1]


class SqliteHistory(History):
    """The history in the service's own database (the embedded default)."""

    async def ping(self) -> None:
        try:
            await StoredEvent.objects.filter(pk=0).aexists()
        except DatabaseError as exc:
            raise HistoryUnavailable(f"SQLite history: {exc}") from exc

    async def store(self, envelopes: list[Envelope]) -> None:
        if envelopes:
            await sync_to_async(self._store)(envelopes)

    @staticmethod
    def _store(envelopes: list[Envelope]) -> None:
        rows = [row_for(envelope) for envelope in envelopes]
        try:
            StoredEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=STORE_CHUNK)
        except DatabaseError as exc:
            raise HistoryUnavailable(f"SQLite history: {exc}") from exc

    async def search(self, query: SearchQuery) -> SearchPage:
        rows = await sync_to_async(lambda: list(search_queryset(query)))()
        events = [orjson.loads(row.body) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return SearchPage(events, events[-1]["id"] if more else None)

    async def delete_older_than(self, moment: datetime) -> int:
        deleted, _ = await StoredEvent.objects.filter(created_at__lt=moment).adelete()
        return deleted
