"""The service's own pages, outside the API: the landing page at ``/`` and the browser's icon.

Plain Django templates (``eventsproject/templates/``) and static files
(``eventsproject/static/``, served by WhiteNoise like the admin's): no script, no inline
style, nothing from another origin, so the page carries a strict Content-Security-Policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_safe

DISTRIBUTION = "events-service"
# Only this origin, no inline script or style, never in a frame.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'"
)


@dataclass(frozen=True)
class Link:
    """A place the landing page points to: a route of this service, by its URL name."""

    title: str
    route: str
    what: str


LINKS = (
    Link("API documentation", "docs", "Swagger UI: every HTTP operation, tried from the page"),
    Link("OpenAPI schema", "schema", "the HTTP API's schema, for code generators and tests"),
    Link("Admin", "admin:index", "workspaces, members and API keys (staff users)"),
    Link("Health", "healthcheck", "200 while the broker and the history answer, else 503"),
    Link("Metrics", "metrics", "Prometheus metrics of this process"),
)


@cache
def service_version() -> str:
    """The installed package's version, from its metadata."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


@require_safe
async def landing(request: HttpRequest) -> HttpResponse:
    """``/``: what the service is, its version, and links to what exists."""
    context = {
        "version": service_version(),
        "links": [(link, reverse(link.route)) for link in LINKS],
    }
    response = HttpResponse(render_to_string("eventsproject/landing.html", context))
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@require_safe
async def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """``/favicon.ico``, which browsers ask for on every page without an icon (the admin's)."""
    return HttpResponseRedirect(static("eventsproject/icon.png"))
