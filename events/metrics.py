"""The service's own Prometheus metrics (``/metrics`` also has django-prometheus's)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from events.ids import timestamp_ms

EMITTED = Counter("events_emitted", "Events published by this service", ["transport"])
DELIVERED = Counter("events_delivered", "Events sent to consumers", ["transport"])
STORED = Counter("events_stored", "Events written to the history")
DELIVERY_LATENCY = Histogram(
    "events_delivery_latency_seconds",
    "Time from publish to send, per delivery",
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
SLOW_CONSUMERS = Counter("events_slow_consumers", "Consumers disconnected for reading too slowly")

# Every series exists from the start, so dashboards and rate() see zeros, not gaps.
for _transport in ("http", "websocket"):
    EMITTED.labels(transport=_transport)
for _transport in ("websocket", "longpoll"):
    DELIVERED.labels(transport=_transport)
CONNECTED.labels(transport="websocket")


# ``labels()`` looks the child up under a lock: 1.7 us, so once, here.
_WEBSOCKET_DELIVERED = DELIVERED.labels(transport="websocket")


def observe_websocket_deliveries(deliveries: Sequence[tuple[Any, ...]]) -> None:
    """Count events just sent to one WebSocket client, and their latency since publish.

    Each item starts with the event's envelope, whose id holds its publish time.
    """
    now = time.time()
    _WEBSOCKET_DELIVERED.inc(len(deliveries))
    observe = DELIVERY_LATENCY.observe
    for delivery in deliveries:
        observe(max(0.0, now - timestamp_ms(delivery[0]["id"]) / 1000))
