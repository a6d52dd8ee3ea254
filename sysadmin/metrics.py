"""``/metrics``: the Prometheus exposition of this process, or of all of them.

With ``PROMETHEUS_MULTIPROC_DIR`` set (before the process starts), every
process writes its samples there and this view aggregates them with
``MultiProcessCollector``, so any process answers for the whole service.
The archive backlog is read from the broker's archive queue at scrape time.
"""

from __future__ import annotations

import asyncio
import logging
import os

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from events.broker import get_archive_queue
from events.metrics import set_backlog

logger = logging.getLogger("sysadmin.metrics")
BACKLOG_TIMEOUT_SECS = 0.5


def multiprocess_dir() -> str | None:
    """The directory shared by the service's processes, when there are several."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """Render every metric in the Prometheus text format (reads files: blocking)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def refresh_backlog() -> None:
    """Set the archive backlog gauge from the broker; a slow broker keeps the last value."""
    try:
        backlog = await asyncio.wait_for(get_archive_queue().backlog(), BACKLOG_TIMEOUT_SECS)
    except Exception:
        logger.warning("could not read the archive backlog", exc_info=True)
        return
    set_backlog(backlog)


async def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus scrape endpoint."""
    await refresh_backlog()
    body = await asyncio.to_thread(exposition)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
