"""A load-generator process holding WebSocket and long-poll consumers.

Started by :mod:`tools.benchmarks.delivery` with ``multiprocessing`` (spawn). It
connects its consumers, says ready, keeps a shared count of measured
deliveries up to date, and on stop hands back its tallies and latencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from tools.benchmarks import wsclient
from tools.benchmarks.tally import Tally

PROGRESS_SECS = 0.1
LONGPOLL_TIMEOUT_SECS = 10


@dataclass(frozen=True)
class ConsumerSpec:
    """What one generator process connects."""

    index: int
    urls: list[str]
    first: int
    websockets: int
    longpolls: int
    workspace: str
    api_key: str
    types: str


def ws_url(base: str, workspace: str, types: str) -> str:
    """The WebSocket URL of a workspace's events on one service process."""
    root = base.replace("http://", "ws://", 1).rstrip("/")
    return f"{root}/v2/workspaces/{workspace}/events?{urlencode({'types': types})}"


def poll_url(base: str, spec: ConsumerSpec) -> str:
    """The long-poll URL of the workspace on one service process."""
    return f"{base.rstrip('/')}/v2/workspaces/{spec.workspace}/events/poll"


def main(spec: ConsumerSpec, ready: Any, stop: Any, progress: Any, results: Any) -> None:
    """Process entry: run the consumers on uvloop until ``stop`` is set."""
    import uvloop

    uvloop.run(_run(spec, ready, stop, progress, results))


async def _run(spec: ConsumerSpec, ready: Any, stop: Any, progress: Any, results: Any) -> None:
    arrays = (array("q"), array("q"))
    tallies: list[Tally] = []
    clients = await _connect_websockets(spec, arrays, tallies)
    polls = [_start_poll(spec, n, arrays, tallies) for n in range(spec.longpolls)]
    ready.put((spec.index, len(clients) + len(polls)))
    while not stop.is_set():
        progress.value = sum(t.received for t in tallies)
        await asyncio.sleep(PROGRESS_SECS)
    for task in polls:
        task.cancel()
    closes = _close_codes(clients)
    await _close_all(clients)
    results.put(_result(spec, tallies, arrays, closes))


async def _connect_websockets(
    spec: ConsumerSpec, arrays: tuple[array, array], tallies: list[Tally]
) -> list[wsclient.WsClient]:
    clients = []
    headers = {"X-Api-Key": spec.api_key}
    for n in range(spec.websockets):
        tally = Tally(*arrays)
        url = ws_url(spec.urls[(spec.first + n) % len(spec.urls)], spec.workspace, spec.types)
        clients.append(await wsclient.connect(url, tally.frame, headers))
        tallies.append(tally)
    return clients


def _start_poll(
    spec: ConsumerSpec, n: int, arrays: tuple[array, array], tallies: list[Tally]
) -> asyncio.Task:
    tally = Tally(*arrays)
    tallies.append(tally)
    url = poll_url(spec.urls[(spec.first + n) % len(spec.urls)], spec)
    return asyncio.get_running_loop().create_task(_poll_loop(url, spec, tally))


async def _poll_loop(url: str, spec: ConsumerSpec, tally: Tally) -> None:
    import httpx

    cursor: str | None = None
    headers = {"X-Api-Key": spec.api_key}
    async with httpx.AsyncClient(headers=headers, timeout=LONGPOLL_TIMEOUT_SECS + 5) as client:
        while True:
            params = {"types": spec.types, "timeout": str(LONGPOLL_TIMEOUT_SECS)}
            if cursor:
                params["cursor"] = cursor
            reply = await client.get(url, params=params)
            now_ns = time.time_ns()
            body = orjson.loads(reply.content)
            for event in body.get("events", []):
                tally.event(event, now_ns)
            cursor = body.get("cursor", cursor)


def _close_codes(clients: list[wsclient.WsClient]) -> dict[str, int]:
    codes: dict[str, int] = {}
    for client in clients:
        if client.closed.done():
            code = str(client.closed.result())
            codes[code] = codes.get(code, 0) + 1
    return codes


async def _close_all(clients: list[wsclient.WsClient]) -> None:
    for client in clients:
        client.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), 5)


def _result(
    spec: ConsumerSpec, tallies: list[Tally], arrays: tuple[array, array], closes: dict[str, int]
) -> dict[str, Any]:
    summaries = [t.summary() for t in tallies]
    return {
        "index": spec.index,
        "consumers": len(tallies),
        "received": sum(s["received"] for s in summaries),
        "duplicates": sum(s["duplicates"] for s in summaries),
        "out_of_order": sum(s["out_of_order"] for s in summaries),
        "per_consumer_received": [s["received"] for s in summaries],
        "closed_during_run": closes,
        "latencies_us": arrays[0].tobytes(),
        "published_us": arrays[1].tobytes(),
    }
