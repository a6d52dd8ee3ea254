"""Bridges benchmark: how a service process hears of each event, three ways, through Redis.

    python -m tools.benchmarks.bridges --rate 500 --events 5000 --json bridges.json

The hub of each service process must learn of every event of a workspace
(docs/SIZING.md). This measures, for one listening process, what that costs
per event and how long it takes, for:

- ``streams``: what the service does: ``XADD`` to the workspace's stream, and a
  blocking ``XREAD`` loop in the listener (redis-py asyncio);
- ``pubsub``: a direct Redis pub/sub bridge: ``PUBLISH``, and a ``SUBSCRIBE``d
  listener (redis-py asyncio);
- ``channels``: Channels' own channels-redis pub/sub layer
  (``RedisPubSubChannelLayer``): ``group_send``, and a listener in the group
  reading with ``receive``.

The publisher and the listener are separate processes (uvloop); the listener
reports its CPU time (``time.process_time``) over the run and the latency of
each event (receive time minus the send time the event carries, one clock).
Nothing else runs: it is the bridge alone, per event, not the fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import orjson
import redis.asyncio as aioredis
import uvloop

MODES = ("streams", "pubsub", "channels")
KEY = "bench:bridges"
PAD = "x" * 300  # about the size of a small event


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m tools.benchmarks.bridges", description=__doc__)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--events", type=int, default=5000)
    p.add_argument("--json", default="")
    return p.parse_args(argv)


def _layer(url: str) -> Any:
    from channels_redis.pubsub import RedisPubSubChannelLayer

    return RedisPubSubChannelLayer(hosts=[url], prefix="bench")


async def _streams(url: str) -> AsyncIterator[bytes]:
    client = aioredis.Redis.from_url(url, socket_timeout=30)
    last = "$"
    while True:
        reply = await client.xread({KEY: last}, count=500, block=5000)
        for _, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                yield fields[b"event"]


async def _pubsub(url: str) -> AsyncIterator[bytes]:
    client = aioredis.Redis.from_url(url, socket_timeout=30)
    async with client.pubsub() as pubsub:
        await pubsub.subscribe(KEY)
        async for message in pubsub.listen():
            if message["type"] == "message":
                yield message["data"]


async def _channels(url: str) -> AsyncIterator[bytes]:
    layer = _layer(url)
    channel = await layer.new_channel()
    await layer.group_add("bridges", channel)
    while True:
        message = await layer.receive(channel)
        yield message["event"]


LISTENERS = {"streams": _streams, "pubsub": _pubsub, "channels": _channels}


def listen(mode: str, url: str, count: int, ready: Any, out: Any) -> None:
    """The listening process: receive ``count`` events; put its CPU time and latencies."""

    async def main() -> None:
        latencies = []
        events = LISTENERS[mode](url)
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.5)  # subscribed (or blocked in XREAD) before the first event
        ready.set()
        data = await first
        cpu_start = time.process_time()
        latencies.append(time.time() - orjson.loads(data)["sent"])
        async for data in events:
            latencies.append(time.time() - orjson.loads(data)["sent"])
            if len(latencies) == count:
                break
        out.put({"cpu_secs": time.process_time() - cpu_start, "latencies": latencies})

    uvloop.run(main())


async def publish(mode: str, url: str, count: int, rate: float) -> None:
    """Send ``count`` events at ``rate`` a second, each carrying its send time."""
    client = aioredis.Redis.from_url(url)
    layer = _layer(url) if mode == "channels" else None
    start = time.perf_counter()
    for n in range(count):
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        data = orjson.dumps({"n": n, "sent": time.time(), "pad": PAD})
        if mode == "streams":
            await client.xadd(KEY, {b"event": data}, maxlen=10_000, approximate=True)
        elif mode == "pubsub":
            await client.publish(KEY, data)
        else:
            await layer.group_send("bridges", {"type": "bench.event", "event": data})
    await client.aclose()


def run(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One mode: a listener process, the publisher here; the listener's figures."""
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    listener = ctx.Process(target=listen, args=(mode, args.redis_url, args.events, ready, out))
    listener.start()
    ready.wait(30)
    uvloop.run(publish(mode, args.redis_url, args.events, args.rate))
    result = out.get(timeout=60)
    listener.join(10)
    lat = np.array(result["latencies"]) * 1000
    return {
        "mode": mode,
        "events": len(lat),
        "rate": args.rate,
        "listener_cpu_us_per_event": round(result["cpu_secs"] / len(lat) * 1e6, 1),
        "latency_ms": {q: round(float(np.percentile(lat, float(q[1:]))), 3) for q in PCTS},
    }


PCTS = ("p50", "p90", "p99", "p99.9")


def main(argv: list[str] | None = None) -> int:
    """Run every mode and print a line each."""
    args = parse_args(argv)
    reports = []
    for mode in args.modes.split(","):
        report = run(mode, args)
        reports.append(report)
        lat = "  ".join(f"{q} {v} ms" for q, v in report["latency_ms"].items())
        cpu = report["listener_cpu_us_per_event"]
        print(f"{mode:9} {report['events']} events  listener {cpu} us CPU/event  {lat}", flush=True)
    if args.json:
        with open(args.json, "w") as target:
            json.dump(reports, target, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
