"""Idle connections benchmark: what N idle WebSocket consumers cost one service process.

    python -m tools.benchmarks.idle --spawn daphne --connections 1000
    python -m tools.benchmarks.idle --url http://127.0.0.1:8500 --pid 1234 --api-key KEY

It warms the process up (a few connections opened and closed, so lazy imports
and background work are loaded), reads its RSS, opens N subscribed consumers
that receive nothing, waits for the process to settle, reads the RSS again
and reports the difference. The budget is 60 MB for 1,000 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any

from tools.benchmarks import wsclient
from tools.benchmarks.procs import listening_pids, rss_bytes
from tools.benchmarks.servers import Servers, create_api_key
from tools.benchmarks.worker import ws_url

BUDGET_MB = 60.0
WARMUP_CONNECTIONS = 20
SETTLE_SECS = 3.0
CONNECT_BATCH = 50


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m tools.benchmarks.idle", description=__doc__)
    p.add_argument("--url", default="", help="a running service process")
    p.add_argument("--pid", type=int, default=0, help="its pid (default: found by port)")
    p.add_argument("--spawn", default="", help="start one server: daphne, uvicorn, ...")
    p.add_argument("--broker", choices=["redis", "memory"], default="redis")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    p.add_argument("--port", type=int, default=8540)
    p.add_argument("--var-dir", default=os.path.join(tempfile.gettempdir(), "events-bench"))
    p.add_argument("--api-key", default="")
    p.add_argument("--workspace", default="bench")
    p.add_argument("--types", default="bench.*")
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--json", default="")
    return p.parse_args(argv)


async def open_many(url: str, key: str, count: int) -> list[wsclient.WsClient]:
    """Open ``count`` consumers, a batch at a time."""
    clients: list[wsclient.WsClient] = []
    headers = {"X-Api-Key": key}
    while len(clients) < count:
        size = min(CONNECT_BATCH, count - len(clients))
        batch = [wsclient.connect(url, _ignore, headers) for _ in range(size)]
        clients.extend(await asyncio.gather(*batch))
    return clients


def _ignore(_data: bytes, _now_ns: int) -> None:
    return None


async def close_all(clients: list[wsclient.WsClient]) -> None:
    """Close every connection and wait for the closes."""
    for client in clients:
        client.close()
    await asyncio.wait([asyncio.ensure_future(c.closed) for c in clients], timeout=10)


async def measure(url: str, key: str, pid: int, count: int) -> dict[str, Any]:
    """RSS of ``pid`` before and after ``count`` idle consumers."""
    await close_all(await open_many(url, key, WARMUP_CONNECTIONS))
    await asyncio.sleep(SETTLE_SECS)
    before = rss_bytes(pid)
    started = time.perf_counter()
    clients = await open_many(url, key, count)
    connect_secs = time.perf_counter() - started
    await asyncio.sleep(SETTLE_SECS)
    after = rss_bytes(pid)
    alive = sum(1 for c in clients if not c.closed.done())
    await close_all(clients)
    added_mb = (after - before) / 2**20
    return {
        "connections": count,
        "alive": alive,
        "connect_secs": round(connect_secs, 2),
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "added_mb": round(added_mb, 1),
        "kb_per_connection": round((after - before) / 1024 / count, 1) if count else 0.0,
        "budget_mb_per_1000": BUDGET_MB,
        "within_budget": added_mb <= BUDGET_MB * count / 1000,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure against --url, or a server started with --spawn."""
    import uvloop

    key = args.api_key or create_api_key(args.var_dir, args.workspace)
    if args.spawn:
        redis_url = args.redis_url if args.broker == "redis" else ""
        with Servers(args.spawn, 1, args.port, args.var_dir, redis_url) as servers:
            url = ws_url(servers.urls[0], args.workspace, args.types)
            report = uvloop.run(measure(url, key, servers.pids[0], args.connections))
    else:
        pid = args.pid or listening_pids([int(args.url.rsplit(":", 1)[1].strip("/"))])[0]
        url = ws_url(args.url, args.workspace, args.types)
        report = uvloop.run(measure(url, key, pid, args.connections))
    return {"server": args.spawn or "external", "broker": args.broker, **report}


def main(argv: list[str] | None = None) -> int:
    """Run, print, write the JSON."""
    args = parse_args(argv)
    if not args.url and not args.spawn:
        sys.exit("give --url (and --pid) or --spawn daphne")
    report = run(args)
    print(
        f"{report['server']} ({report['broker']}): {report['alive']}/{report['connections']} "
        f"idle connections added {report['added_mb']} MB "
        f"({report['kb_per_connection']} KB each; RSS {report['rss_before_mb']} -> "
        f"{report['rss_after_mb']} MB) -> "
        f"{'within' if report['within_budget'] else 'OVER'} the {BUDGET_MB:g} MB budget"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
    return 0 if report["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
