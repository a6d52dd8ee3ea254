"""Benchmark of the history: archive throughput into noida-db, and search latency.

    python -m tools.benchmarks.history [--events 100000] [--archivers 1] [--rate 0]
        [--es-url URL] [--redis-url redis://127.0.0.1:6379/11] [--json out.json]

Starts noida-db (Elasticsearch API) on a free port in 9250-9299 unless --es-url is
given, flushes the Redis database of --redis-url, and runs ``manage.py archive``
processes against both. The producer writes ~1 KB events to the broker (at --rate
per second, 0 = as fast as it can) while the backlog is sampled; the archive
throughput is the number of events stored per second from the first publish until
the backlog is empty. Then it measures the latency of searches (``History.search``,
the function behind ``GET .../events``) over the stored events: a type filter, a
date range, a payload field and full text; p50/p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # tools/benchmarks/ -> the repository
WORKSPACE = "bench"
PREFIX = "bench"
TYPES = [f"{noun}.{verb}" for noun in ("orders", "users", "tickets", "invoices", "carts")
         for verb in ("created", "updated", "paid", "closed")]  # fmt: skip
REGIONS = ["eu-west", "eu-north", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af"]
VOCABULARY = [f"w{n:03d}" for n in range(500)]
CUSTOMERS = 1000
PUBLISH_BATCH = 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.benchmarks.history", description=__doc__)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--event-bytes", type=int, default=1024)
    p.add_argument("--rate", type=float, default=0, help="events/s to publish; 0: flat out")
    p.add_argument("--archivers", type=int, default=1, help="manage.py archive processes")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--searches", type=int, default=200, help="per kind of search")
    p.add_argument("--es-url", default="", help="default: start noida-db")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    p.add_argument("--json", default="", help="default: var/benchmarks/history-<time>.json")
    return p.parse_args(argv)


# --- noida-db and the archiver processes ---------------------------------------------


def free_port(first: int = 9250, last: int = 9299) -> int:
    for port in range(first, last + 1):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {first}-{last}")


class Noida:
    """A noida-db this benchmark starts and stops."""

    def __init__(self) -> None:
        self.port = free_port()
        self.data_dir = tempfile.mkdtemp(prefix="noida-bench-")
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self, *args: str) -> None:
        binary = shutil.which("noida-db") or "noida-db"
        command = [binary, *args, "--data-dir", self.data_dir]
        subprocess.run(command, check=True, capture_output=True, timeout=60)  # noqa: S603

    def up(self) -> None:
        self._run("up", "--only", "elasticsearch", "--elasticsearch-port", str(self.port))

    def down(self) -> None:
        self._run("down")
        shutil.rmtree(self.data_dir, ignore_errors=True)


def service_env(args: argparse.Namespace, es_url: str, var_dir: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "eventsproject.settings",
        "REDIS_URL": args.redis_url,
        "ELASTICSEARCH_URL": es_url,
        "ELASTICSEARCH_INDEX_PREFIX": PREFIX,
        "ARCHIVE_BATCH_SIZE": str(args.batch_size),
        "EVENTS_VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
    }


def start_archivers(count: int, env: dict[str, str]) -> list[subprocess.Popen]:
    command = [sys.executable, str(ROOT / "manage.py"), "archive"]
    return [
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603
        for _ in range(count)
    ]


def stop(processes: list[subprocess.Popen]) -> list[float]:
    """Stop the archivers; return the CPU seconds each used (from /proc, if readable)."""
    cpu = [_cpu_secs(p.pid) for p in processes]
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    return cpu


def _cpu_secs(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


# --- producing and archiving ------------------------------------------------------------


def make_event(n: int, size: int, rng: random.Random) -> bytes:
    """One event of about ``size`` bytes as the broker stores it."""
    import orjson

    from events.event import now_iso

    event = {
        "type": TYPES[n % len(TYPES)],
        "payload": {
            "orderId": n,
            "region": REGIONS[n % len(REGIONS)],
            "customer": f"c-{n % CUSTOMERS}",
            "note": "",
        },
        "source": {"workspaceId": WORKSPACE, "userId": f"u-{n % 50}", "serviceTopic": "bench"},
        "options": {"persist": True},
        "createdAt": now_iso(),
    }
    room = size - len(orjson.dumps(event))
    words: list[str] = []
    while room > 0:
        words.append(rng.choice(VOCABULARY))
        room -= len(words[-1]) + 1
    event["payload"]["note"] = " ".join(words)  # type: ignore[index]
    return orjson.dumps(event)


async def produce(stream: Any, args: argparse.Namespace, marks: list[tuple[int, float]]) -> None:
    """Publish ``args.events`` events in batches, at ``args.rate`` per second if set."""
    rng = random.Random(7)
    start = time.monotonic()
    for first in range(0, args.events, PUBLISH_BATCH):
        count = min(PUBLISH_BATCH, args.events - first)
        batch = [make_event(first + i, args.event_bytes, rng) for i in range(count)]
        await stream.append(WORKSPACE, batch)
        marks.append((first + count, time.time()))
        if args.rate:
            ahead = (first + count) / args.rate - (time.monotonic() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)


async def sample_backlog(queue: Any, samples: list[tuple[float, int]], stop: asyncio.Event) -> None:
    start = time.monotonic()
    while not stop.is_set():
        samples.append((round(time.monotonic() - start, 2), await queue.backlog()))
        await asyncio.sleep(0.5)


async def wait_drained(queue: Any) -> None:
    """Return once the archivers have stored everything published."""
    while True:
        if not await queue.backlog():
            return
        await asyncio.sleep(0.1)


async def archive_phase(args: argparse.Namespace) -> dict[str, Any]:
    """Publish while the archivers run; measure until the backlog is empty."""
    from events.broker.redis import RedisLiveStream, redis_client
    from events.broker.redis_archive import RedisArchiveQueue

    client = redis_client(args.redis_url)
    stream = RedisLiveStream(client, max_backlog=10_000_000)
    queue = RedisArchiveQueue(client, buffer_size=10_000)
    await client.flushdb()
    samples: list[tuple[float, int]] = []
    marks: list[tuple[int, float]] = []
    done = asyncio.Event()
    sampler = asyncio.create_task(sample_backlog(queue, samples, done))
    start = time.monotonic()
    await produce(stream, args, marks)
    produced_secs = time.monotonic() - start
    backlog_at_end = await queue.backlog()
    await wait_drained(queue)
    total_secs = time.monotonic() - start
    done.set()
    await sampler
    await client.aclose()
    return {
        "events": args.events,
        "publish_secs": round(produced_secs, 2),
        "publish_rate": round(args.events / produced_secs),
        "archive_secs": round(total_secs, 2),
        "archive_rate": round(args.events / total_secs),
        "backlog_max": max((b for _, b in samples), default=0),
        "backlog_when_publishing_ended": backlog_at_end,
        "backlog_samples": samples,
        "window": (marks[0][1], marks[-1][1]) if marks else (0, 0),
    }


# --- searching --------------------------------------------------------------------------


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def search_kinds(window: tuple[float, float], rng: random.Random) -> dict[str, Any]:
    """Each kind of search: a function returning fresh parameters for one search."""
    first, last = window
    span = max(last - first, 0.001)

    def date_range() -> dict[str, Any]:
        start = first + rng.random() * span * 0.9
        return {"afterDate": iso(start), "beforeDate": iso(start + span * 0.1)}

    return {
        "type filter": lambda: {"types": rng.choice(TYPES)},
        "date range": date_range,
        "payload field": lambda: {"payload.customer": f"c-{rng.randrange(CUSTOMERS)}"},
        "full text": lambda: {"text": " ".join(rng.sample(VOCABULARY, 2))},
    }


async def search_phase(args: argparse.Namespace, es_url: str, window: Any) -> dict[str, Any]:
    from events.filters import parse_filters
    from history.base import SearchQuery
    from history.elastic import ElasticHistory
    from history.query import parse_date
    from kernel.caller import Caller

    history = ElasticHistory(es_url, prefix=PREFIX)
    await history.refresh()
    caller = Caller.for_api_key(WORKSPACE, "bench", frozenset({"search"}))
    rng = random.Random(11)
    results: dict[str, Any] = {}
    for name, params_for in search_kinds(window, rng).items():
        latencies, hits = [], []
        for _ in range(args.searches):
            params = params_for()
            dates = {k: params.pop(k) for k in ("afterDate", "beforeDate") if k in params}
            query = SearchQuery(
                WORKSPACE,
                caller,
                parse_filters({k: [v] for k, v in params.items()}),
                after_date=parse_date("afterDate", dates["afterDate"]) if dates else None,
                before_date=parse_date("beforeDate", dates["beforeDate"]) if dates else None,
            )
            began = time.perf_counter()
            page = await history.search(query)
            latencies.append((time.perf_counter() - began) * 1000)
            hits.append(len(page.events))
        values = np.array(latencies)
        results[name] = {
            "p50_ms": round(float(np.percentile(values, 50)), 2),
            "p99_ms": round(float(np.percentile(values, 99)), 2),
            "mean_ms": round(float(values.mean()), 2),
            "mean_hits": round(float(np.mean(hits)), 1),
        }
    stored = await history.client.count(index=f"{PREFIX}-{WORKSPACE}")
    await history.close()
    return {"stored": int(stored["count"]), "latency": results}


# --- the report -------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    cfg, arc, srch = report["config"], report["archive"], report["search"]
    lines = [
        f"history benchmark: {cfg['events']} events of ~{cfg['event_bytes']} B, "
        f"{cfg['archivers']} archiver process(es), batch {cfg['batch_size']}, "
        f"Elasticsearch API {cfg['es']}; load {cfg['loadavg_1m_at_end']} on {cfg['cpus']} CPUs",
        f"publish   {arc['publish_rate']:>8} events/s  ({arc['publish_secs']} s)",
        f"archive   {arc['archive_rate']:>8} events/s  "
        f"({arc['archive_secs']} s to an empty backlog)",
        f"backlog   max {arc['backlog_max']}  "
        f"when publishing ended {arc['backlog_when_publishing_ended']}",
        f"stored    {srch['stored']} documents (expected {cfg['events']})",
        f"archiver CPU seconds per process: {report['archiver_cpu_secs']}",
        "",
        f"{'search over ' + str(srch['stored']) + ' events':<32}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'mean ms':>9}{'hits':>7}",
    ]
    for name, row in srch["latency"].items():
        lines.append(
            f"{name:<32}{row['p50_ms']:>9}{row['p99_ms']:>9}{row['mean_ms']:>9}{row['mean_hits']:>7}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    noida = None if args.es_url else Noida()
    var_dir = tempfile.mkdtemp(prefix="events-bench-")
    processes: list[subprocess.Popen] = []
    try:
        if noida:
            noida.up()
        es_url = args.es_url or noida.url  # type: ignore[union-attr]
        env = service_env(args, es_url, var_dir)
        keys = (
            "DJANGO_SETTINGS_MODULE",
            "REDIS_URL",
            "ELASTICSEARCH_URL",
            "EVENTS_VAR_DIR",
            "LOG_LEVEL",
        )
        os.environ.update({k: env[k] for k in keys})
        import django

        django.setup()
        asyncio.run(_reset_index(es_url))
        processes = start_archivers(args.archivers, env)
        archive = asyncio.run(archive_phase(args))
        cpu = stop(processes)
        search = asyncio.run(search_phase(args, es_url, archive.pop("window")))
    finally:
        stop(processes)
        if noida:
            noida.down()
        shutil.rmtree(var_dir, ignore_errors=True)
    config = {
        k: getattr(args, k) for k in ("events", "event_bytes", "rate", "archivers", "batch_size")
    }
    config |= {"es": "noida-db" if noida else args.es_url, "cpus": os.cpu_count()}
    config["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    return {"config": config, "archive": archive, "search": search, "archiver_cpu_secs": cpu}


async def _reset_index(es_url: str) -> None:
    from history.elastic import ElasticHistory

    history = ElasticHistory(es_url, prefix=PREFIX)
    found = await history.client.indices.get(index=f"{PREFIX}_v1-*", allow_no_indices=True)
    for name in found:  # Elasticsearch 8 refuses wildcard deletes
        await history.client.indices.delete(index=name)
    await history.setup()
    await history.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = run(args)
    print(table(report))
    out = Path(args.json or ROOT / "var" / "benchmarks" / f"history-{int(time.time())}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nreport: {out}")


if __name__ == "__main__":
    main()
