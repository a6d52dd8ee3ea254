"""The ASGI application: HTTP through Django, WebSocket through Channels."""

import os

import django
from django.core.handlers.asgi import ASGIHandler

from eventsproject.startup import refuse_without_static_files

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventsproject.settings")
# What django.core.asgi.get_asgi_application() does, with a check in between: production
# mode needs `manage.py collectstatic` first (one line, before any middleware is loaded).
django.setup(set_prefix=False)
refuse_without_static_files()
django_asgi_app = ASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from adapters.http.bodylimit import BodyLimitMiddleware, limit_daphne_bodies  # noqa: E402
from adapters.http.stream_outlet import OutletMiddleware  # noqa: E402
from adapters.websocket.routing import websocket_urlpatterns  # noqa: E402
from events.realtime.lifecycle import LifecycleMiddleware  # noqa: E402
from eventsproject import collector  # noqa: E402
from sysadmin.serverlogs import route_daphne_access_log  # noqa: E402

route_daphne_access_log()
limit_daphne_bodies()

router = ProtocolTypeRouter(
    {
        # An event stream's request carries its connection (the slow-consumer bounds).
        "http": OutletMiddleware(BodyLimitMiddleware(django_asgi_app)),
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
# Background work (the archiver, ...) starts with the server process (or its first
# request), and a stop drains it (events.realtime.lifecycle); tests drive ``router`` directly
# and start what they need themselves.
application = LifecycleMiddleware(router) if settings.EVENTS_BACKGROUND else router
collector.freeze()
