"""The scaled history: Elasticsearch (or noida-db), through the async client.

Layout and documents are in :mod:`history.elastic_mapping`, filter queries in
:mod:`history.elastic_query`. Writes are ``_bulk`` ``create`` operations with
the event id as document id, so an event stored twice is kept once; they go
through the workspace's alias (``require_alias``), creating the index the
first time a workspace is seen.
"""

from __future__ import annotations

import importlib.util
import logging
from datetime import datetime
from typing import Any

from elasticsearch import (
    AsyncElasticsearch,
    BadRequestError,
    NotFoundError,
)
from elasticsearch.exceptions import ApiError, TransportError
from elasticsearch_dsl import AsyncSearch, Q

from events.event import Envelope
from history import elastic_mapping as layout
from history.base import History, HistoryUnavailable, QueryBody, SearchPage, SearchQuery
from history.elastic_query import fence_queries, search_queries
from kernel.caller import Caller
from kernel.errors import ValidationError

logger = logging.getLogger("history.elastic")
REQUEST_TIMEOUT_SECS = 30
STORE_ATTEMPTS = 3
Pending = tuple[Envelope, dict[str, Any]]
OK_STATUSES = (200, 201, 409)  # 409: the document exists already (stored before)


def http_node_class() -> Any:
    """The async HTTP client the Elasticsearch client uses: aiohttp if installed, else httpx."""
    return "aiohttp" if importlib.util.find_spec("aiohttp") else "httpxasync"


def es_error_message(exc: ApiError) -> str:
    """The reason Elasticsearch gives for refusing a request."""
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    causes = (error.get("root_cause") or [error]) if isinstance(error, dict) else []
    reasons = [str(c["reason"]) for c in causes if isinstance(c, dict) and c.get("reason")]
    return "; ".join(reasons) or str(exc.message)


def _error_types(exc: ApiError) -> list[str]:
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error")
    if not isinstance(error, dict):
        return []
    causes = [*(error.get("root_cause") or []), error.get("caused_by"), error]
    return [str(c.get("type")) for c in causes if isinstance(c, dict)]


def refusal_reason(exc: ApiError) -> str:
    """A short, generic reason for a refused search: never Elasticsearch's own text."""
    types = _error_types(exc)
    return next((REFUSALS[kind] for kind in types if kind in REFUSALS), "Elasticsearch refused it")


# Elasticsearch's error types, and what a client is told of them.
REFUSALS = {
    "parse_exception": "a value does not fit its field",
    "number_format_exception": "a value does not fit its field",
    "date_time_parse_exception": "a value does not fit its field",
    "mapper_parsing_exception": "a value does not fit its field",
    "illegal_argument_exception": "a field cannot be used this way",
    "query_shard_exception": "a field cannot be used this way",
    "parsing_exception": "the query is malformed",
    "x_content_parse_exception": "the query is malformed",
    "too_many_buckets_exception": "the aggregations make too many buckets",
    "too_many_clauses": "the query has too many clauses",
}


class ElasticHistory(History):
    """Events in one Elasticsearch index per workspace."""

    takes_query_bodies = True

    def __init__(self, url: str, *, prefix: str) -> None:
        self.prefix = prefix
        self.client = AsyncElasticsearch(
            url, request_timeout=REQUEST_TIMEOUT_SECS, max_retries=0, node_class=http_node_class()
        )
        self._set_up = False
        self._ready: set[str] = set()

    async def ping(self) -> None:
        try:
            await self.client.cluster.health()
        except (TransportError, ApiError) as exc:
            raise HistoryUnavailable(f"Elasticsearch: {exc}") from exc

    async def setup(self) -> None:
        """Install the index template (idempotent)."""
        await self.client.indices.put_index_template(
            name=layout.template_name(self.prefix), **layout.template_body(self.prefix)
        )
        self._set_up = True

    async def ensure_index(self, workspace_id: str) -> None:
        """Create a workspace's index and alias unless they exist."""
        if workspace_id in self._ready:
            return
        if not self._set_up:
            await self.setup()
        alias = layout.alias_name(self.prefix, workspace_id)
        try:
            await self.client.indices.create(
                index=layout.index_name(self.prefix, workspace_id),
                aliases={alias: {"is_write_index": True}},
            )
        except BadRequestError as exc:
            if "resource_already_exists_exception" not in str(exc):
                raise
        self._ready.add(workspace_id)

    async def store(self, envelopes: list[Envelope]) -> None:
        pending = [(e, layout.document_for(e)) for e in envelopes]
        try:
            for _ in range(STORE_ATTEMPTS):
                if not pending:
                    return
                pending = await self._store_once(pending)
        except (TransportError, ApiError) as exc:
            raise HistoryUnavailable(f"Elasticsearch: {exc}") from exc
        raise HistoryUnavailable(f"Elasticsearch refused {len(pending)} events")

    async def _store_once(self, pending: list[Pending]) -> list[Pending]:
        """One ``_bulk``; return what must be sent again (index created, or fallback form)."""
        for workspace_id in {e["source"]["workspaceId"] for e, _ in pending}:
            await self.ensure_index(workspace_id)
        operations: list[dict[str, Any]] = []
        for envelope, document in pending:
            alias = layout.alias_name(self.prefix, envelope["source"]["workspaceId"])
            operations += [{"create": {"_index": alias, "_id": envelope["id"]}}, document]
        reply = await self.client.bulk(operations=operations, require_alias=True)
        if not reply.get("errors"):
            return []
        return [
            self._retry_form(envelope, document, item["create"])
            for (envelope, document), item in zip(pending, reply["items"], strict=True)
            if item["create"].get("status") not in OK_STATUSES
        ]

    def _retry_form(self, envelope: Envelope, document: dict, result: dict) -> Pending:
        """How to send a refused event again; raise if retrying now cannot help."""
        status = result.get("status")
        error = result.get("error") or {}
        if status == 404:
            self._ready.discard(envelope["source"]["workspaceId"])
            return envelope, document
        if status == 400 and "@raw" not in document:
            logger.warning("event %s stored in fallback form: %s", envelope["id"], error)
            return envelope, layout.fallback_document(envelope)
        raise HistoryUnavailable(f"Elasticsearch refused event {envelope['id']}: {error}")

    def _alias(self, workspace_id: str) -> str:
        return layout.alias_name(self.prefix, workspace_id)

    async def search(self, query: SearchQuery) -> SearchPage:
        search = AsyncSearch().filter(Q("bool", filter=search_queries(query)))
        search = search.sort({"id": {"order": query.sort}}).extra(size=query.limit + 1)
        if query.after_id:
            search = search.extra(search_after=[query.after_id])
        reply = await self._execute(self._alias(query.workspace_id), search.to_dict())
        hits = reply.get("hits", {}).get("hits", [])
        events = [layout.envelope_from_document(h["_source"]) for h in hits[: query.limit]]
        more = len(hits) > query.limit
        return SearchPage(events, events[-1]["id"] if more else None)

    async def search_raw(self, workspace_id: str, caller: Caller, body: QueryBody) -> dict:
        fence = [q.to_dict() for q in fence_queries(workspace_id, caller)]
        request: dict[str, Any] = {
            "query": {"bool": {"must": [body.query], "filter": fence}},
            "size": body.limit,
            "sort": body.sort or [{"id": {"order": "desc"}}],
        }
        if body.aggs:
            request["aggs"] = body.aggs
        reply = await self._execute(self._alias(workspace_id), request)
        hits = reply.get("hits", {}).get("hits", [])
        documents = [layout.envelope_from_document(h["_source"]) for h in hits]
        aggs = reply.get("aggregations", {})
        return {"size": len(documents), "documents": documents, "aggs": aggs}

    async def _execute(self, alias: str, request: dict[str, Any]) -> dict:
        """Run a search body; a refused query is the caller's ValidationError."""
        request = {
            **request,
            "_source": {"excludes": layout.INTERNAL_FIELDS},
            "track_total_hits": False,
        }
        try:
            reply = await self.client.search(index=alias, body=request)
        except NotFoundError:
            return {}
        except BadRequestError as exc:
            logger.warning("Elasticsearch refused a search: %s", es_error_message(exc))
            raise ValidationError(f"the search could not be run: {refusal_reason(exc)}") from None
        except (TransportError, ApiError) as exc:
            raise HistoryUnavailable(f"Elasticsearch: {exc}") from exc
        return dict(reply.body)

    async def delete_older_than(self, moment: datetime) -> int:
        reply = await self.client.delete_by_query(
            index=f"{self.prefix}_v1-*",
            query={"range": {"createdAt": {"lt": moment.isoformat()}}},
            conflicts="proceed",
            allow_no_indices=True,
        )
        return int(reply.get("deleted", 0))

    async def refresh(self) -> None:
        await self.client.indices.refresh(index=f"{self.prefix}_v1-*", allow_no_indices=True)

    async def close(self) -> None:
        await self.client.close()
