"""What one consumer received: count, duplicates, order and latency per delivery.

Besides the delivery latency (receive time minus send time) it keeps the
publish latency (the event id's millisecond minus the send time): the part of
the delay spent before the broker had the event.

The emitter puts in each measured event's payload its send time (``t``, ns of
the wall clock), its connection (``e``) and that connection's sequence number
(``s``), and ``m`` = 1; warm-up events carry ``m`` = 0 and are not counted.
"""

from __future__ import annotations

from array import array
from typing import Any

import orjson


class Tally:
    """One consumer's accounting; latencies (microseconds) go to a shared array."""

    __slots__ = (
        "duplicates",
        "last_id",
        "latencies",
        "out_of_order",
        "published",
        "received",
        "seen",
    )

    def __init__(self, latencies: array, published: array) -> None:
        self.latencies = latencies
        self.published = published
        self.last_id = ""
        self.seen: dict[int, bytearray] = {}
        self.received = 0
        self.duplicates = 0
        self.out_of_order = 0

    def frame(self, data: bytes, now_ns: int) -> None:
        """Account for one WebSocket frame of the service."""
        message = orjson.loads(data)
        if message.get("op") == "event":
            self.event(message["event"], now_ns)

    def event(self, event: dict[str, Any], now_ns: int) -> None:
        """Account for one delivered event that arrived at ``now_ns``."""
        payload = event.get("payload")
        if not isinstance(payload, dict) or not payload.get("m"):
            return
        seen = self._seen(payload["e"], payload["s"])
        if seen[payload["s"]]:
            self.duplicates += 1
            return
        seen[payload["s"]] = 1
        if event["id"] < self.last_id:
            self.out_of_order += 1
        else:
            self.last_id = event["id"]
        self.received += 1
        self.latencies.append((now_ns - payload["t"]) // 1000)
        self.published.append(int(event["id"][:16]) * 1000 - payload["t"] // 1000)

    def _seen(self, emitter: int, seq: int) -> bytearray:
        seen = self.seen.get(emitter)
        if seen is None:
            seen = self.seen[emitter] = bytearray(1024)
        if seq >= len(seen):
            seen.extend(bytes(max(seq + 1, 2 * len(seen)) - len(seen)))
        return seen

    def summary(self) -> dict[str, int]:
        """The counters, for the report."""
        return {
            "received": self.received,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
        }
