"""Django's middlewares, with their hooks run in the event loop instead of a thread.

Under ASGI, Django runs every hook of a ``MiddlewareMixin`` middleware
(``process_request``, ``process_view``, ``process_response``) through
``sync_to_async``: a hop to a worker thread and back for each. With the
stack in settings that was about 25 hops per request, and most of the 5 ms of
CPU that a long poll or an HTTP emit cost. These hooks do no I/O (they read
headers and cookies, set attributes, count metrics), so here they run in
place. The one hook that may write to the database, the session's
``process_response`` when the session changed, still goes to a thread.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, common, csrf, security
from django_prometheus import middleware as prometheus

from adapters.http.middleware import InLoop


class PrometheusBeforeMiddleware(InLoop, prometheus.PrometheusBeforeMiddleware):
    """Counts the request and starts its timer."""


class PrometheusAfterMiddleware(InLoop, prometheus.PrometheusAfterMiddleware):
    """Counts the response by view, method and status."""

    async def process_view(self, request: HttpRequest, view_func: Any, *args: Any, **kwargs: Any):
        return super().process_view(request, view_func, *args, **kwargs)


class SecurityMiddleware(InLoop, security.SecurityMiddleware):
    """Security headers and redirects."""


class CommonMiddleware(InLoop, common.CommonMiddleware):
    """Trailing slashes, ``DISALLOWED_USER_AGENTS``, ``Content-Length``."""


class CsrfViewMiddleware(InLoop, csrf.CsrfViewMiddleware):
    """The CSRF check; the request body is already read when views run under ASGI."""

    async def process_view(  # type: ignore[override]
        self, request: HttpRequest, callback: Any, args: Any, kwargs: Any
    ):
        return super().process_view(request, callback, args, kwargs)


class AuthenticationMiddleware(InLoop, auth.AuthenticationMiddleware):
    """``request.user``, loaded lazily (in a thread) when something reads it."""


class MessageMiddleware(InLoop, messages.MessageMiddleware):
    """The admin's flash messages, kept in the session or a cookie."""


class XFrameOptionsMiddleware(InLoop, clickjacking.XFrameOptionsMiddleware):
    """``X-Frame-Options``."""


class SessionMiddleware(sessions.SessionMiddleware):
    """The session, loaded lazily; saved in a thread when it changed."""

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        self.process_request(request)
        response = await self.get_response(request)  # type: ignore[misc]
        session = request.session
        if session.modified or settings.SESSION_SAVE_EVERY_REQUEST:
            return await sync_to_async(self.process_response)(request, response)
        return self.process_response(request, response)
