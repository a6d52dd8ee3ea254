# The events service: one uvicorn process serving HTTP and WebSocket on port 8000
# (uvicorn with uvloop spends a third less CPU per delivery than Daphne and applies
# backpressure to slow readers: docs/SIZING.md). Run one container per core.
# Configure it through the environment (README, "Configuration"). Production mode: it
# refuses to start without DJANGO_SECRET_KEY and JWT_SECRET (or JWT_PUBLIC_KEYS_FILE /
# JWT_JWKS_FILE) from the environment; set REDIS_URL and ELASTICSEARCH_URL too.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EVENTS_VAR_DIR=/var/lib/events \
    EVENTS_STATIC_ROOT=/app/static \
    DJANGO_DEBUG=false

WORKDIR /app

RUN groupadd --system --gid 10001 events \
    && useradd --system --uid 10001 --gid events --home-dir /app --no-create-home --shell /usr/sbin/nologin events \
    && mkdir -p /var/lib/events \
    && chown 10001:10001 /var/lib/events

COPY pyproject.toml README.md manage.py ./
COPY kernel ./kernel
COPY adapters ./adapters
COPY eventsproject ./eventsproject
COPY events ./events
COPY workspaces ./workspaces
COPY history ./history
COPY sysadmin ./sysadmin
RUN pip install --no-cache-dir .
# The admin's, Swagger UI's and the landing page's files, compressed and cache-busted, in
# the image (not the volume): development mode only for this step, with throw-away secrets.
RUN DJANGO_DEBUG=true EVENTS_VAR_DIR=/tmp/build-var python manage.py collectstatic --noinput -v 0 \
    && rm -rf /tmp/build-var

USER 10001:10001
VOLUME ["/var/lib/events"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/sys/healthcheck', timeout=4).status != 200)"]

# Apply the migrations (idempotent), then serve.
# The service writes its own JSON access line (secrets redacted): uvicorn's is off.
CMD ["sh", "-c", "python manage.py migrate --noinput && exec uvicorn eventsproject.asgi:application --host 0.0.0.0 --port 8000 --loop uvloop --http httptools --ws websockets-sansio --lifespan on --no-access-log"]
