"""The API's HTTP routes under /v2: emit, long poll, event stream (SSE), search."""

from django.urls import path

from adapters.http.events_views import EventsView, PollView
from adapters.http.history_views import SearchView
from adapters.http.stream_views import StreamView

urlpatterns = [
    path("v2/workspaces/<str:workspace_id>/events", EventsView.as_view(), name="events"),
    path("v2/workspaces/<str:workspace_id>/events/poll", PollView.as_view(), name="poll"),
    path("v2/workspaces/<str:workspace_id>/events/stream", StreamView.as_view(), name="stream"),
    path("v2/workspaces/<str:workspace_id>/search", SearchView.as_view(), name="search"),
]
