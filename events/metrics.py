"""The service's own Prometheus metrics (``/metrics`` also has django-prometheus's)."""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from kernel.fastpaths import FastPath
from kernel.ids import timestamp_ms

EMITTED = Counter("events_emitted", "Events published by this service", ["transport"])
DELIVERED = Counter("events_delivered", "Events sent to consumers", ["transport"])
STORED = Counter("events_stored", "Events written to the history")
DELIVERY_LATENCY = Histogram(
    "events_delivery_latency_seconds",
    "Time from publish to send, per delivery (when the step that sent it ended)",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONNECTED = Gauge(
    "events_connected_clients", "Connected clients", ["transport"], multiprocess_mode="livesum"
)
LONGPOLL_WAITING = Gauge(
    "events_longpoll_waiting", "Long polls waiting for events", multiprocess_mode="livesum"
)
ARCHIVE_BACKLOG = Gauge(
    "events_archive_backlog", "Events waiting to be archived", multiprocess_mode="max"
)
ARCHIVE_FAILURES = Counter("events_archive_failures", "Failed history writes")
ARCHIVE_UNPARSABLE = Counter(
    "events_archive_unparsable", "Stream entries skipped by the archiver: not events of ours"
)
OWN_QUEUED = Gauge(
    "events_own_queued",
    "Audit and error events waiting for the broker",
    multiprocess_mode="livesum",
)
OWN_DROPPED = Counter("events_own_dropped", "Audit and error events dropped: the queue was full")
IDEMPOTENT_REPLAYS = Counter(
    "events_idempotent_replays",
    "Retried emits answered with their idempotency key's first answer, nothing published",
    ["transport"],
)
SLOW_CONSUMERS = Counter("events_slow_consumers", "Consumers disconnected for reading too slowly")
WEBSOCKET_OPENED = Counter(
    "events_websocket_opened",
    "WebSockets opened, by how their frames are written: straight to the server's socket"
    " (uvicorn, daphne) or as ASGI messages (asgi)",
    ["writes"],
)
# The fast path of ``observe_many`` (kernel/fastpaths.py).
HISTOGRAM_PARTS = FastPath("Histogram.observe_many", {"prometheus-client": "0.26.0"})

# Every series exists from the start, so dashboards and rate() see zeros, not gaps.
for _transport in ("http", "websocket"):
    EMITTED.labels(transport=_transport)
for _transport in ("websocket", "longpoll", "sse"):
    DELIVERED.labels(transport=_transport)
for _transport in ("websocket", "sse"):
    CONNECTED.labels(transport=_transport)
for _writes in ("uvicorn", "daphne", "asgi"):
    WEBSOCKET_OPENED.labels(writes=_writes)


class DeliveryTally:
    """WebSocket deliveries, counted as they go out and put into the metrics once per event.

    A feed writes one event to many sockets in one step of the event loop.
    Observing each delivery cost two locked updates and a bucket search, about
    1.5 us, as much as the rest of the delivery's Python. The tally counts
    deliveries per event instead; right after the step it observes each event
    once, weighted by the sockets it reached, at the time the step ended.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False

    def add(self, deliveries: Sequence[tuple[Any, ...]]) -> None:
        """Count events just sent to one client; each item starts with the event's envelope."""
        counts = self.counts
        for delivery in deliveries:
            event_id = delivery[0]["id"]
            counts[event_id] = counts.get(event_id, 0) + 1
        loop = asyncio.get_running_loop()
        if not self._scheduled or loop is not self._loop:
            self._loop, self._scheduled = loop, True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Put what was counted into the metrics."""
        self._scheduled = False
        counts, self.counts = self.counts, {}
        now = time.time()
        for event_id, count in counts.items():
            observe_many(DELIVERY_LATENCY, max(0.0, now - timestamp_ms(event_id) / 1000), count)
        _WEBSOCKET_DELIVERED.inc(sum(counts.values()))


def observe_many(histogram: Histogram, amount: float, count: int) -> None:
    """``count`` observations of ``amount`` in two updates (``observe`` takes one at a time).

    A histogram keeps its sum and one counter per bucket; an observation adds
    to the sum and to the first bucket whose upper bound is not below it. Those
    parts are prometheus-client's insides (``_sum``, ``_buckets``,
    ``_upper_bounds``): read only with the pinned version and
    ``EVENTS_DIRECT_WRITES`` on (tests/test_metrics.py checks both ways).
    """
    if HISTOGRAM_PARTS.usable() and not HISTOGRAM_PARTS.lacks(histogram, _HISTOGRAM_NEEDS):
        histogram._sum.inc(amount * count)
        histogram._buckets[bisect.bisect_left(histogram._upper_bounds, amount)].inc(count)
        return
    for _ in range(count):
        histogram.observe(amount)


_HISTOGRAM_NEEDS = ("_sum", "_buckets", "_upper_bounds")


# ``labels()`` looks the child up under a lock: 1.7 us, so once, here.
_WEBSOCKET_DELIVERED = DELIVERED.labels(transport="websocket")
WEBSOCKET_DELIVERIES = DeliveryTally()


def set_backlog(backlog: int | None) -> None:
    """Publish the archive backlog; an unknown one is NaN, never 0 (nothing waiting)."""
    ARCHIVE_BACKLOG.set(math.nan if backlog is None else backlog)
