"""The service's own pages, outside the API: the landing page at ``/`` and the browser's icon.

Plain Django templates (``eventsproject/templates/``) and static files
(``eventsproject/static/``, served by WhiteNoise like the admin's): no script, no inline
style, nothing from another origin, so the page carries a strict Content-Security-Policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_safe

from adapters import asyncapi

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
    Link(
        "Realtime protocol", "protocol", "the WebSocket and the event stream: frames, close codes"
    ),
    Link("AsyncAPI document", "asyncapi", "the realtime protocol's AsyncAPI 3.0 document"),
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


def spans(text: str) -> list[tuple[str, bool]]:
    """A description's text and its `code` spans, each with whether it is code."""
    return [(part, index % 2 == 1) for index, part in enumerate(text.split("`")) if part]


def _protocol_context() -> dict[str, Any]:
    """The AsyncAPI document as the page lists it: channels, their messages, close codes."""
    document = asyncapi.document()
    messages = document["components"]["messages"]
    channels = []
    for name, channel in document["channels"].items():
        listed = [
            (
                messages[key],
                spans(messages[key]["summary"]),
                json.dumps(messages[key]["payload"], indent=2),
            )
            for key in channel["messages"]
        ]
        # The first paragraph: the page shows the rest (the close codes) as a table.
        about = spans(channel["description"].split("\n\n")[0])
        channels.append({"name": name, "channel": channel, "about": about, "messages": listed})
    return {
        "version": service_version(),
        "info": document["info"],
        "channels": channels,
        "close_codes": document["channels"][asyncapi.WS_CHANNEL]["x-close-codes"],
        "security": document["components"]["securitySchemes"],
        "asyncapi_url": reverse("asyncapi"),
        "schema_url": reverse("schema"),
    }


@asyncapi.read_only
def protocol_page(request: HttpRequest) -> HttpResponse:
    """``/v2/protocol``: the AsyncAPI document as a page, served offline (no script)."""
    response = HttpResponse(render_to_string("eventsproject/protocol.html", _protocol_context()))
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@require_safe
async def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """``/favicon.ico``, which browsers ask for on every page without an icon (the admin's)."""
    return HttpResponseRedirect(static("eventsproject/icon.png"))
