from django.urls import path

from history.views import SearchView

urlpatterns = [
    path("v2/workspaces/<str:workspace_id>/search", SearchView.as_view(), name="search"),
]
