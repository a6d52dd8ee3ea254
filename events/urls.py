from django.urls import path

from events.views import EventsView, PollView

urlpatterns = [
    path("v2/workspaces/<str:workspace_id>/events", EventsView.as_view(), name="events"),
    path("v2/workspaces/<str:workspace_id>/events/poll", PollView.as_view(), name="poll"),
]
