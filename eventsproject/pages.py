"""The service's own HTML-side routes, outside the API: the browser's icon."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.views.decorators.http import require_safe


@require_safe
async def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """``/favicon.ico``, which browsers ask for on every page without an icon (the admin's)."""
    return HttpResponseRedirect(static("eventsproject/icon.png"))
