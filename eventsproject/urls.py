"""HTTP routes: the landing page, the API under /v2, the admin, the schema, and operations."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from adapters.asyncapi import asyncapi_view
from adapters.http.events_views import unknown_path
from eventsproject.pages import favicon, landing, protocol_page

urlpatterns = [
    path("", landing, name="landing"),
    path("", include("adapters.http.urls")),
    path("v2/schema", SpectacularAPIView.as_view(), name="schema"),
    path("v2/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("v2/asyncapi.json", asyncapi_view, name="asyncapi"),
    path("v2/protocol", protocol_page, name="protocol"),
    path("admin/", admin.site.urls),
    path("", include("sysadmin.urls")),
    path("favicon.ico", favicon, name="favicon"),
]
# Static files are served by eventsproject.static.StaticFilesMiddleware in every mode.
# Last: an unknown path of the API answers the contract's JSON 404 (DEBUG on or off).
urlpatterns.append(re_path(r"^(?:v2|sys)/", unknown_path))

# Whatever escapes every other handler still answers JSON, never Django's HTML page.
handler500 = "adapters.http.failures.server_error"
