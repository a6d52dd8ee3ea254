"""Settings of the events service, read once from the environment.

With nothing configured the service runs on embedded defaults in one process:
an in-memory broker and a SQLite history. ``REDIS_URL`` and
``ELASTICSEARCH_URL`` switch to the scaled deployment. The README lists every
variable with its default.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from eventsproject.databases import databases
from eventsproject.devsecrets import dev_secret, refuse_public
from eventsproject.env import envbool, envint, envlist, envstr
from history.routers import HISTORY_DB

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("EVENTS_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Production unless asked: development mode (DJANGO_DEBUG=true) is what ./scripts/serve opts into.
DEBUG = envbool("DJANGO_DEBUG", False)
SECRET_KEY = refuse_public("DJANGO_SECRET_KEY", envstr("DJANGO_SECRET_KEY")) or (
    dev_secret(VAR_DIR, "django-secret-key") if DEBUG else ""
)
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set: DJANGO_DEBUG is off (the default, production mode). "
        "For development on this machine only, set DJANGO_DEBUG=true (./scripts/serve does)."
    )
ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "*")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "workspaces",
    "events",
    "history",
    "sysadmin",
    # The service's own pages and their static files (eventsproject/templates, static).
    "eventsproject",
]

# Django's own middlewares, with their hooks run in the event loop rather than a
# thread each under ASGI (eventsproject/loop_middleware.py); the same behaviour.
MIDDLEWARE = [
    "eventsproject.loop_middleware.PrometheusBeforeMiddleware",
    "adapters.http.middleware.CorrelationIdMiddleware",
    "sysadmin.access.AccessLogMiddleware",
    "adapters.http.middleware.DjangoRefusalMiddleware",
    "adapters.http.middleware.FailureMiddleware",
    "eventsproject.loop_middleware.SecurityMiddleware",
    "eventsproject.static.StaticFilesMiddleware",
    "eventsproject.loop_middleware.SessionMiddleware",
    "eventsproject.loop_middleware.CommonMiddleware",
    "eventsproject.loop_middleware.CsrfViewMiddleware",
    "eventsproject.loop_middleware.AuthenticationMiddleware",
    "eventsproject.loop_middleware.MessageMiddleware",
    "eventsproject.loop_middleware.XFrameOptionsMiddleware",
    "eventsproject.loop_middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "eventsproject.urls"
ASGI_APPLICATION = "eventsproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The shared state (workspaces, members, API keys, users, sessions): SQLite, or the
# PostgreSQL database of DATABASE_URL that every host shares (eventsproject/databases.py).
DATABASE_URL = envstr("DATABASE_URL")
DATABASES = databases(
    DATABASE_URL,
    sqlite_path=envstr("EVENTS_DB_PATH", str(VAR_DIR / "events.sqlite3")),
    history_path=envstr("EVENTS_HISTORY_DB_PATH", str(VAR_DIR / "history.sqlite3")),
)
DATABASE_ROUTERS = ["history.routers.HistoryRouter"] if HISTORY_DB in DATABASES else []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
# What `manage.py collectstatic` writes and the service serves in production (WhiteNoise:
# eventsproject/static.py); the image collects them at build time into /app/static.
STATIC_ROOT = Path(envstr("EVENTS_STATIC_ROOT", str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed (gzip) copies and content-hashed names (admin/css/base.1a2b3c4d5e6f.css),
    # served with a one-year Cache-Control: immutable. Development mode serves the apps'
    # files under their plain names.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- The broker -------------------------------------------------------------
REDIS_URL = envstr("REDIS_URL")
EVENTS_BUFFER_SIZE = envint("EVENTS_BUFFER_SIZE", 10_000, minimum=10)
EVENTS_MAX_EVENT_BYTES = envint("EVENTS_MAX_EVENT_BYTES", 102_400, minimum=256)
EVENTS_MAX_BATCH = envint("EVENTS_MAX_BATCH", 100, minimum=1)
# The largest body: a full batch of the largest events and the JSON around them; a larger
# one gets 413 RequestTooLarge before the rest is read (adapters/http/bodylimit.py).
EVENTS_MAX_BODY_BYTES = envint(
    "EVENTS_MAX_BODY_BYTES", EVENTS_MAX_BATCH * EVENTS_MAX_EVENT_BYTES + 65_536, minimum=1024
)
DATA_UPLOAD_MAX_MEMORY_SIZE = EVENTS_MAX_BODY_BYTES
EVENTS_WS_OUTBOX_MAX = envint("EVENTS_WS_OUTBOX_MAX", 2_000, minimum=1)
EVENTS_WS_BUFFER_MAX_BYTES = envint("EVENTS_WS_BUFFER_MAX_BYTES", 8 * 2**20, minimum=1)
EVENTS_WS_MAX_QUERY_CHARS = envint("EVENTS_WS_MAX_QUERY_CHARS", 4096, minimum=256)
EVENTS_WS_RECHECK_SECS = envint("EVENTS_WS_RECHECK_SECS", 60, minimum=0)
# Server-Sent Events (GET .../events/stream, events/realtime/stream.py): a ": ping" comment
# after this many seconds without a message (under common proxy idle timeouts of 30-60 s),
# the "retry:" a client waits before reconnecting, and the slow-consumer bounds.
EVENTS_SSE_HEARTBEAT_SECS = envint("EVENTS_SSE_HEARTBEAT_SECS", 15, minimum=1)
EVENTS_SSE_RETRY_MS = envint("EVENTS_SSE_RETRY_MS", 2_000, minimum=100)
EVENTS_SSE_OUTBOX_MAX = envint("EVENTS_SSE_OUTBOX_MAX", 2_000, minimum=1)
EVENTS_SSE_BUFFER_MAX_BYTES = envint("EVENTS_SSE_BUFFER_MAX_BYTES", 8 * 2**20, minimum=1)
# The fast paths that read private attributes of uvicorn, Daphne, Channels and
# prometheus-client, each pinned to the versions it was written for (kernel/fastpaths.py).
EVENTS_DIRECT_WRITES = envbool("EVENTS_DIRECT_WRITES", True)
# Idempotent emits (events/realtime/idempotency.py): how long a key's first answer is kept,
# and how much of the embedded mode's memory those answers may take (Redis keeps its own).
EVENTS_IDEMPOTENCY_SECS = envint("EVENTS_IDEMPOTENCY_SECS", 86_400, minimum=1)
EVENTS_IDEMPOTENCY_MEMORY_BYTES = envint(
    "EVENTS_IDEMPOTENCY_MEMORY_BYTES", 64 * 2**20, minimum=65_536
)
EVENTS_AUTH_CACHE_SECS = envint("EVENTS_AUTH_CACHE_SECS", 5, minimum=0)
EVENTS_LONGPOLL_DEFAULT_SECS = envint("EVENTS_LONGPOLL_DEFAULT_SECS", 25, minimum=0)
EVENTS_LONGPOLL_MAX_SECS = envint("EVENTS_LONGPOLL_MAX_SECS", 60, minimum=1)
EVENTS_SERVICE_NAME = envstr("EVENTS_SERVICE_NAME", "events")
EVENTS_REPLICA = envstr("EVENTS_REPLICA") or f"{socket.gethostname()}-{os.getpid()}"

if REDIS_URL:
    # Redis pub/sub ignores the database number: the prefix keeps deployments that share
    # one Redis server (another database, another service name) from hearing each other.
    _REDIS_DB = urlsplit(REDIS_URL).path.strip("/") or "0"
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": f"events:layer:{EVENTS_SERVICE_NAME}:{_REDIS_DB}",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- The history -------------------------------------------------------------
ELASTICSEARCH_URL = envstr("ELASTICSEARCH_URL")
ELASTICSEARCH_INDEX_PREFIX = envstr("ELASTICSEARCH_INDEX_PREFIX", "events")
EVENTS_RETENTION_DAYS = envint("EVENTS_RETENTION_DAYS", 0)
ARCHIVE_BATCH_SIZE = envint("ARCHIVE_BATCH_SIZE", 500, minimum=1)
ARCHIVE_FLUSH_MSECS = envint("ARCHIVE_FLUSH_MSECS", 1000, minimum=1)
ARCHIVE_MAX_BACKLOG = envint("ARCHIVE_MAX_BACKLOG", 1_000_000, minimum=1)
ARCHIVE_IN_PROCESS = envbool("ARCHIVE_IN_PROCESS", True)
# The health check calls an archiver failing after this many failures in a row, or
# when it has completed no cycle (read, store, acknowledge) for this long.
ARCHIVE_UNHEALTHY_FAILURES = envint("ARCHIVE_UNHEALTHY_FAILURES", 3, minimum=1)
ARCHIVE_STALL_SECS = envint("ARCHIVE_STALL_SECS", 60, minimum=1)
# Background work in the server process; the test suite turns it off and starts what it tests.
EVENTS_BACKGROUND = envbool("EVENTS_BACKGROUND", True)

# --- Who may do what ---------------------------------------------------------
JWT_PUBLIC_KEYS_FILE = envstr("JWT_PUBLIC_KEYS_FILE")
JWT_JWKS_FILE = envstr("JWT_JWKS_FILE")
_JWT_KEYS = bool(JWT_PUBLIC_KEYS_FILE or JWT_JWKS_FILE)
# In development mode without RS256 keys, this machine's own secret (eventsproject/devsecrets.py).
JWT_SECRET = refuse_public("JWT_SECRET", envstr("JWT_SECRET")) or (
    dev_secret(VAR_DIR, "jwt-secret") if DEBUG and not _JWT_KEYS else ""
)
if not DEBUG and not (JWT_SECRET or _JWT_KEYS):
    raise ImproperlyConfigured(
        "JWT_SECRET (HS256), JWT_PUBLIC_KEYS_FILE or JWT_JWKS_FILE (RS256) must be set when "
        "DJANGO_DEBUG is off (the default): no token could be verified otherwise."
    )
if not DEBUG and JWT_SECRET and len(JWT_SECRET) < 32:
    raise ImproperlyConfigured(
        "JWT_SECRET must be at least 32 characters (256 bits for HS256) when DJANGO_DEBUG is off."
    )
JWT_AUDIENCE = envstr("JWT_AUDIENCE")
JWT_ISSUER = envstr("JWT_ISSUER")
JWT_LEEWAY_SECS = envint("JWT_LEEWAY_SECS", 30)
EVENTS_ADMIN_TOKEN = envstr("EVENTS_ADMIN_TOKEN")

# --- Operations --------------------------------------------------------------
LOG_LEVEL = envstr("LOG_LEVEL", "INFO").upper()
HEAPDUMP_MIN_INTERVAL_SECS = envint("HEAPDUMP_MIN_INTERVAL_SECS", 60)

HEAPDUMP_DIR = envstr("HEAPDUMP_DIR", str(VAR_DIR / "heapdumps"))
HEALTHCHECK_TIMEOUT_MSECS = envint("HEALTHCHECK_TIMEOUT_MSECS", 800, minimum=1)

# JSON lines on stdout (sysadmin.logs); the servers' own access logs are replaced by
# sysadmin.access, whose lines carry the correlation id and never a credential. The
# servers' own loggers (uvicorn's handshake line "WebSocket /…?apiKey=…", Daphne's access
# log: sysadmin/serverlogs.py) go through the same handler, whose filter masks secrets.
_OURS = {"handlers": ["stdout"], "propagate": False}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "sysadmin.logs.JsonFormatter"}},
    "filters": {
        "secrets": {"()": "kernel.redaction.RedactSecretsFilter"},
        "security": {"()": "sysadmin.logs.OneLineSecurityFilter"},
    },
    "handlers": {
        "stdout": {
            "class": "sysadmin.logs.StdoutHandler",
            "formatter": "json",
            "filters": ["secrets", "security"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.server": {"level": "WARNING"},
        "uvicorn": {**_OURS, "level": "INFO"},
        "uvicorn.access": {**_OURS, "level": "WARNING"},
        "uvicorn.error": {"level": "INFO"},
        # The Elasticsearch client logs every request at INFO: one line per archive batch.
        "elastic_transport": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        # Django's own 4xx warnings repeat the access line; 5xx are logged with their stack.
        "django.request": {"level": "ERROR"},
    },
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "EXCEPTION_HANDLER": "adapters.http.errors.drf_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Events service",
    "DESCRIPTION": "Emit events, consume them live, search the history.",
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from this service's own static files: /v2/docs works without a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "DependencyStateEnum": "sysadmin.serializers.DEPENDENCY_STATES",
        "ArchiverStateEnum": "sysadmin.serializers.ARCHIVER_STATES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "adapters.http.schema.close_strict_objects",
    ],
    # Section 4's credentials (adapters.http.auth_schema puts them on every workspace operation).
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
        }
    },
}
