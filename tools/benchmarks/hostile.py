"""A hostile neighbour for the delivery benchmark: ``--hostile worst`` or ``--hostile issue``.

One more WebSocket, in another workspace (``<workspace>-hostile``), subscribes
with a costly filter (a ``subscribe`` frame: the worst filter is too long for a
URL), and a second emitter sends that workspace ``--hostile-rate`` events/s
with 128-character types and ten 128-character payload strings. Every one of
them is matched against the filter in the service process that also serves the
measured workspace, whose latency shows what the neighbour costs.

- ``issue``: issue 11's pattern, ``*a*a*a*a*a*!`` (refused since the filter limits).
- ``worst``: the most the limits allow, arranged so that every part of it is
  evaluated on every event: 49 four-star patterns of the longest kind that fail
  after reading the whole value, then one that matches, for ``types`` and nine
  field keys; a tenth field key of 50 failing patterns.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from tools.benchmarks import wsclient
from tools.benchmarks.worker import ws_url

SUBSCRIBE_ANSWER_SECS = 2.0
HOSTILE_TYPE = "a" * 128
ISSUE_PATTERN = "*a*a*a*a*a*!"
FIELD_KEYS = 10


def _failing(n: int) -> str:
    """A four-star pattern that finds its first parts and fails at the last one."""
    return "*" + "a" * 40 + "*" + "a" * 40 + "*" + "a" * 40 + f"-{n:03d}*"


def worst_filter() -> dict[str, list[str]]:
    """The costliest filter the limits let through (see the module's docstring)."""
    failing = [_failing(n) for n in range(49)]
    filters = {"types": [*failing, "*"]}
    for k in range(FIELD_KEYS - 1):
        filters[f"payload.k{k}"] = [*failing, "*"]
    filters[f"payload.k{FIELD_KEYS - 1}"] = [*failing, _failing(49)]
    return filters


FILTERS = {"issue": lambda: {"types": [ISSUE_PATTERN]}, "worst": worst_filter}


def hostile_payload() -> dict[str, str]:
    """The payload of the hostile workspace's events: every field key has a long value."""
    return {f"k{k}": "a" * 128 for k in range(FIELD_KEYS)}


@dataclass(frozen=True)
class HostileSpec:
    """The hostile subscriber."""

    url: str
    workspace: str
    api_key: str
    kind: str


def main(spec: HostileSpec, ready: Any, stop: Any, results: Any) -> None:
    """Process entry: subscribe with the hostile filter, hold the connection until ``stop``."""
    import uvloop

    uvloop.run(_run(spec, ready, stop, results))


async def _run(spec: HostileSpec, ready: Any, stop: Any, results: Any) -> None:
    frames: list[dict[str, Any]] = []
    url = ws_url(spec.url, spec.workspace, "hostile.nothing-yet")
    client = await wsclient.connect(
        url, lambda data, _ns: frames.append(orjson.loads(data)), {"X-Api-Key": spec.api_key}
    )
    subscribe = {"op": "subscribe", "ref": "hostile", "filters": FILTERS[spec.kind]()}
    client.send_text(orjson.dumps(subscribe))
    await asyncio.sleep(SUBSCRIBE_ANSWER_SECS)
    refused = next((f for f in frames if f.get("op") == "error"), None)
    ready.put(refused)
    while not stop.is_set():  # noqa: ASYNC110 - a multiprocessing Event
        await asyncio.sleep(0.1)
    events = sum(1 for f in frames if f.get("op") == "event")
    closed = client.closed.result() if client.closed.done() else None
    client.close()
    results.put(
        {
            "filter": spec.kind,
            "refused": refused and {k: refused.get(k) for k in ("error", "message", "details")},
            "events_received": events,
            "closed": closed,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    )
