"""The history's interface: store envelopes once, find them again.

Two implementations keep the same promises: :mod:`history.sqlite` (the
embedded default) and :mod:`history.elastic` (``ELASTICSEARCH_URL``). Both
take a :class:`SearchQuery` (filters, dates, paging and the caller whose read
rule applies inside the query) and answer a :class:`SearchPage`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.event import Envelope
from events.filters import Filters
from kernel import outages
from kernel.caller import Caller
from kernel.errors import DependencyDown, NotImplementedByHistory

ASC, DESC = "asc", "desc"


class HistoryUnavailable(DependencyDown):
    """The history did not take or answer a request; the caller may retry."""

    dependency = outages.HISTORY


DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class QueryBody:
    """A query body that passed the fence (``history.fence``): what a backend may run."""

    query: dict[str, Any]
    sort: list[Any] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT
    aggs: dict[str, Any] | None = None


@dataclass(frozen=True)
class SearchQuery:
    """One page of a search in one workspace, for one caller."""

    workspace_id: str
    caller: Caller
    filters: Filters = field(default_factory=Filters)
    after_date: datetime | None = None
    before_date: datetime | None = None
    limit: int = 50
    sort: str = DESC
    after_id: str | None = None


@dataclass(frozen=True)
class SearchPage:
    """The events of a page and the id to continue after (None on the last page)."""

    events: list[Envelope]
    next_after_id: str | None


class History(ABC):
    """Where every persistent event is stored and searched."""

    takes_query_bodies = False  # whether search_raw works (Elasticsearch only)

    @abstractmethod
    async def ping(self) -> None:
        """Raise HistoryUnavailable if the history does not answer."""

    @abstractmethod
    async def store(self, envelopes: list[Envelope]) -> None:
        """Store envelopes; storing an event id again is a no-op. Raise HistoryUnavailable."""

    @abstractmethod
    async def search(self, query: SearchQuery) -> SearchPage:
        """Return one page of the events that match and that the caller may read."""

    async def search_raw(self, workspace_id: str, caller: Caller, body: QueryBody) -> dict:
        """Run a checked query body inside the workspace and the read rule."""
        raise NotImplementedByHistory("query bodies need the Elasticsearch history")

    @abstractmethod
    async def delete_older_than(self, moment: datetime) -> int:
        """Remove events created before ``moment``; return how many (if known)."""

    async def setup(self) -> None:
        """Install what the history needs (idempotent)."""
        return None

    async def refresh(self) -> None:
        """Make everything stored so far searchable (tests, benchmarks)."""
        return None

    async def close(self) -> None:
        """Release connections."""
        return None
