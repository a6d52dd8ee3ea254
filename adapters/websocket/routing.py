"""WebSocket routes."""

from django.urls import path

from adapters.websocket.consumer import EventsConsumer

websocket_urlpatterns = [
    path("v2/workspaces/<str:workspace_id>/events", EventsConsumer.as_asgi()),
]
