"""Static files (the admin's, Swagger UI's, the landing page's) served by the service itself.

WhiteNoise in every mode: in production the files ``collectstatic`` wrote to
``STATIC_ROOT`` (compressed, cache-busted names, read once at start-up); in development
mode (``DJANGO_DEBUG=true``) the apps' own files, found on each request. WhiteNoise's
middleware is synchronous, which under ASGI is a hop to a thread on every request; this
one looks the path up in the event loop and goes to a thread only to serve a file.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise for an async middleware stack: only static paths leave the event loop."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(get_response, *args, **kwargs)
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Serve a static file, or pass the request on."""
        path = request.path_info
        if not path.startswith(self.static_prefix):
            return await self.get_response(request)
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file)(path)
        else:
            static_file = self.files.get(path)
        if static_file is None:
            return await self.get_response(request)
        return await sync_to_async(self.serve)(static_file, request)
