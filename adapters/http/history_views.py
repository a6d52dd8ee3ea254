"""HTTP adapters of search: ``GET .../events`` (via ``adapters.http.events_views.EventsView``)
and ``POST .../search``. Parse, authorize, call :mod:`history.search`, format."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from adapters.http.events_serializers import ErrorSerializer
from adapters.http.history_serializers import (
    QueryBodySerializer,
    QueryResultSerializer,
    SearchOutputSerializer,
    SearchQuerySerializer,
)
from adapters.http.workspace_view import WorkspaceView, json_body, request_context
from events.cloudevents import to_cloudevent, wants_cloudevents
from events.filters import query_params
from history.search import search_events, search_query_body
from kernel.caller import SEARCH

ERRORS = dict.fromkeys((400, 401, 403, 404, 500, 503), ErrorSerializer)


search_schema = extend_schema(
    operation_id="search_events",
    parameters=[
        SearchQuerySerializer,
        OpenApiParameter(
            "fields",
            OpenApiTypes.OBJECT,
            style="form",
            explode=True,
            description="Any field by dotted path, e.g. `payload.orderId=42`, "
            "`source.userId=u-42`; a repeated key means OR; `*` wildcards",
        ),
    ],
    responses={200: SearchOutputSerializer, **ERRORS},
    summary="Search the history with filters",
    description="Events in publish order (`sort=asc`) or its reverse (`desc`, the default), "
    "filtered (all filters combined with AND), limited to the events the caller may read; "
    "pages are never short because of that. Pass `next` as `cursor` for the next page. "
    "`format=cloudevents`: the events as structured CloudEvents 1.0 (docs/CLOUDEVENTS.md).",
)


async def get_events(view: WorkspaceView, request: Request, workspace_id: str) -> Response:
    """``GET .../events``: one page of the history."""
    caller = await view.authorize(request, workspace_id, SEARCH)
    params = query_params(request.query_params)
    cloudevents = wants_cloudevents((params.pop("format", None) or [""])[-1])
    result = await search_events(
        workspace_id=workspace_id,
        caller=caller,
        params=params,
        context=request_context(request),
    )
    if cloudevents:
        result = {**result, "events": [to_cloudevent(e) for e in result["events"]]}
    return Response({"result": result})


class SearchView(WorkspaceView):
    """Search with an Elasticsearch query body, fenced to the workspace and the read rule."""

    @extend_schema(
        operation_id="search_query",
        request=QueryBodySerializer,
        responses={200: QueryResultSerializer, 501: ErrorSerializer, **ERRORS},
        summary="Search with an Elasticsearch query body (Elasticsearch history only)",
        description="The query runs inside the workspace and the caller's read rule. Scripts, "
        "runtime fields and lookups in other indices are refused (400); aggregations are for "
        "owners (403 otherwise), 3 levels deep at most. 501 on the SQLite history.",
    )
    async def post(self, request: Request, workspace_id: str) -> Response:
        caller = await self.authorize(request, workspace_id, SEARCH)
        result = await search_query_body(
            workspace_id=workspace_id,
            caller=caller,
            body=json_body(request),
            context=request_context(request),
        )
        return Response(result)
