"""Delivery benchmark: C consumers of one workspace, R events/s, latency of each delivery.

    python -m tools.benchmarks.delivery --spawn daphne:2 --consumers 100 --rate 200 \
        --duration 20 --warmup 5 --json out.json

or against running service processes::

    python -m tools.benchmarks.delivery --url http://127.0.0.1:8500 --url http://127.0.0.1:8501 \
        --api-key KEY --consumers 100 --rate 200

Consumers are spread over the service processes and over ``--client-procs``
generator processes (uvloop, a lean WebSocket client); one more process
emits. Each event carries its send time; latency is receive time minus send
time on the same clock. See docs/SIZING.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import queue
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from tools.benchmarks import emitter, hostile, worker
from tools.benchmarks.procs import Watch, listening_pids
from tools.benchmarks.servers import Servers, create_api_key
from tools.benchmarks.stats import latency_ms, table

READY_TIMEOUT_SECS = 120.0
GENERATOR_MAX_CORES = 0.7
SEND_RATE_MIN_RATIO = 0.98


@dataclass
class Target:
    """The service processes under test."""

    urls: list[str]
    pids: list[int]
    api_key: str
    server: str
    broker: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m tools.benchmarks.delivery", description=__doc__)
    p.add_argument("--url", action="append", default=[], help="a service process (repeat)")
    p.add_argument("--spawn", default="", help="start servers: daphne:N, uvicorn:N")
    p.add_argument("--broker", choices=["redis", "memory"], default="redis")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    p.add_argument("--port", type=int, default=8500, help="first port for --spawn")
    p.add_argument("--var-dir", default=os.path.join(tempfile.gettempdir(), "events-bench"))
    p.add_argument("--api-key", default="", help="default: create one with manage.py")
    p.add_argument("--workspace", default="bench")
    p.add_argument("--types", default="bench.*")
    p.add_argument("--consumers", type=int, default=100)
    p.add_argument("--longpoll", type=int, default=0)
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--client-procs", type=int, default=2)
    p.add_argument("--emitters", type=int, default=2, help="emitting connections")
    p.add_argument("--pad", type=int, default=0, help="extra payload bytes per event")
    p.add_argument("--no-persist", action="store_true", help="emit with options.persist false")
    p.add_argument("--pids", default="", help="service pids, comma separated (default: by port)")
    p.add_argument("--drain-timeout", type=float, default=15)
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for --spawn servers")
    p.add_argument(
        "--hostile",
        choices=["none", "worst", "issue"],
        default="none",
        help="one more subscriber, in another workspace, with a costly filter (hostile.py)",
    )
    p.add_argument("--hostile-rate", type=float, default=10, help="its workspace's events/s")
    p.add_argument("--json", default="", help="write the report here")
    p.add_argument("--plot", default="", help="write a latency histogram PNG here")
    return p.parse_args(argv)


@contextlib.contextmanager
def target(args: argparse.Namespace) -> Iterator[Target]:
    """The service under test: given with --url, or started with --spawn."""
    key = args.api_key or create_api_key(args.var_dir, args.workspace)
    if args.hostile != "none":
        args.hostile_key = create_api_key(args.var_dir, hostile_workspace(args))
    if not args.spawn:
        yield Target(args.url, _external_pids(args), key, "external", args.broker)
        return
    kind, _, count = args.spawn.partition(":")
    env = dict(item.split("=", 1) for item in args.env)
    redis_url = args.redis_url if args.broker == "redis" else ""
    with Servers(kind, int(count or 1), args.port, args.var_dir, redis_url, env) as servers:
        yield Target(servers.urls, servers.pids, key, kind, args.broker)


def hostile_workspace(args: argparse.Namespace) -> str:
    """The workspace of the hostile subscriber (``--hostile``)."""
    return f"{args.workspace}-hostile"


def _external_pids(args: argparse.Namespace) -> list[int]:
    given = [int(p) for p in args.pids.split(",") if p]
    return given or listening_pids([urlsplit(u).port or 80 for u in args.url])


def reset_stream(args: argparse.Namespace) -> None:
    """Delete the benchmark workspace's stream (only in the benchmark's Redis database)."""
    if args.broker != "redis":
        return
    import redis

    client = redis.Redis.from_url(args.redis_url)
    client.delete(f"events:stream:{args.workspace}")
    client.close()


def consumer_specs(args: argparse.Namespace, tgt: Target) -> list[worker.ConsumerSpec]:
    """Split the consumers over the generator processes (long polls in the last one)."""
    procs = max(1, args.client_procs)
    specs, first = [], 0
    for n in range(procs):
        count = args.consumers // procs + (1 if n < args.consumers % procs else 0)
        longpolls = args.longpoll if n == procs - 1 else 0
        specs.append(
            worker.ConsumerSpec(
                n, tgt.urls, first, count, longpolls, args.workspace, tgt.api_key, args.types
            )
        )
        first += count
    return specs


@dataclass
class Generator:
    """The generator processes and their channels."""

    ctx: Any
    consumers: list[Any]
    progress: list[Any]
    ready: Any
    stop: Any
    results: Any

    @classmethod
    def start(cls, specs: list[worker.ConsumerSpec]) -> Generator:
        """Start the consumer processes and wait until every consumer is connected."""
        ctx = mp.get_context("spawn")
        gen = cls(ctx, [], [], ctx.Queue(), ctx.Event(), ctx.Queue())
        for spec in specs:
            counter = ctx.Value("q", 0, lock=False)
            proc = ctx.Process(
                target=worker.main, args=(spec, gen.ready, gen.stop, counter, gen.results)
            )
            proc.start()
            gen.consumers.append(proc)
            gen.progress.append(counter)
        for _ in specs:
            gen.ready.get(timeout=READY_TIMEOUT_SECS)
        return gen

    def received(self) -> int:
        """Measured deliveries so far, over every process."""
        return sum(counter.value for counter in self.progress)

    def finish(self) -> list[dict[str, Any]]:
        """Stop the consumers and collect what they counted."""
        self.stop.set()
        results = [self.results.get(timeout=60) for _ in self.consumers]
        for proc in self.consumers:
            proc.join(10)
        return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    """One benchmark run; returns the report."""
    with target(args) as tgt:
        reset_stream(args)
        gen = Generator.start(consumer_specs(args, tgt))
        neighbour = Neighbour.start(args, tgt, gen.ctx)
        watch = Watch(_watched(args, tgt, gen))
        watch.start()
        try:
            emitted = _emit(args, tgt, gen, watch)
            _drain(args, gen, emitted["measured"], watch)
        finally:
            results = gen.finish()
            hostile_result = neighbour.finish()
            watch.stop()
        report = build_report(args, tgt, emitted, results, watch)
        if hostile_result:
            report["hostile"] = hostile_result
        return report


@dataclass
class Neighbour:
    """The hostile subscriber and its workspace's emitter (``--hostile``), or nothing."""

    procs: list[Any]
    stop: Any
    results: Any
    queues: tuple[Any, ...] = ()  # kept open while the processes run

    @classmethod
    def start(cls, args: argparse.Namespace, tgt: Target, ctx: Any) -> Neighbour:
        """Subscribe with the hostile filter, then start emitting into its workspace."""
        if args.hostile == "none":
            return cls([], None, None)
        stop, results, ready, phases = ctx.Event(), ctx.Queue(), ctx.Queue(), ctx.Queue()
        workspace, key = hostile_workspace(args), args.hostile_key
        spec = hostile.HostileSpec(tgt.urls[0], workspace, key, args.hostile)
        sub = ctx.Process(target=hostile.main, args=(spec, ready, stop, results))
        sub.start()
        ready.get(timeout=READY_TIMEOUT_SECS)
        emit_spec = emitter.EmitSpec(
            tgt.urls[:1], 1, workspace, key, args.hostile_rate, args.warmup, args.duration,
            event_type=hostile.HOSTILE_TYPE, persist=False, extra=hostile.hostile_payload(),
        )  # fmt: skip
        emit = ctx.Process(target=emitter.main, args=(emit_spec, phases))
        emit.start()
        return cls([sub, emit], stop, results, (ready, phases))

    def finish(self) -> dict[str, Any] | None:
        """Stop both; what the hostile subscriber saw."""
        if not self.procs:
            return None
        self.stop.set()
        result = self.results.get(timeout=60)
        result["emitted"] = _emitter_result(self.queues[1])
        for proc in self.procs:
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
        return result


def _emitter_result(phases: Any) -> dict[str, Any]:
    """What the hostile workspace's emitter sent (it reports last)."""
    while True:
        phase, value = phases.get(timeout=60)
        if phase == "result":
            return {k: value[k] for k in ("sent_total", "acked", "errors", "first_error")}


def _watched(args: argparse.Namespace, tgt: Target, gen: Generator) -> dict[str, int]:
    pids = {f"service-{n}": pid for n, pid in enumerate(tgt.pids)}
    if args.broker == "redis":
        port = urlsplit(args.redis_url).port or 6379
        for pid in listening_pids([port]):
            pids["redis"] = pid
    pids.update({f"consumers-{n}": p.pid for n, p in enumerate(gen.consumers)})
    return pids


def _emit(args: argparse.Namespace, tgt: Target, gen: Generator, watch: Watch) -> dict[str, Any]:
    spec = emitter.EmitSpec(
        tgt.urls, args.emitters, args.workspace, tgt.api_key, args.rate, args.warmup,
        args.duration, pad_bytes=args.pad, persist=not args.no_persist,
    )  # fmt: skip
    phases = gen.ctx.Queue()
    proc = gen.ctx.Process(target=emitter.main, args=(spec, phases))
    proc.start()
    result: dict[str, Any] = {}
    while not result:
        phase, value = phases.get(timeout=READY_TIMEOUT_SECS + args.warmup + args.duration)
        if phase == "start":
            watch.mark_start()
        elif phase == "result":
            result = value
    proc.join(10)
    return result


def _drain(args: argparse.Namespace, gen: Generator, measured: int, watch: Watch) -> None:
    """Wait until every delivery came or the drain timeout; CPU is counted until then."""
    expected = measured * (args.consumers + args.longpoll)
    deadline = time.monotonic() + args.drain_timeout
    while gen.received() < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    watch.mark_end()
    time.sleep(0.5)  # let duplicates, if any, arrive


def build_report(
    args: argparse.Namespace,
    tgt: Target,
    emitted: dict[str, Any],
    results: list[dict[str, Any]],
    watch: Watch,
) -> dict[str, Any]:
    """The JSON report of a run."""
    latencies = _gather(results, "latencies_us")
    consumers = args.consumers + args.longpoll
    expected = emitted["measured"] * consumers
    received = sum(r["received"] for r in results)
    window = watch.window_secs
    processes = watch.report()
    processes["emitter"] = _emitter_usage(emitted)
    return {
        "config": _config(args, tgt),
        "events": emitted,
        "deliveries": _deliveries(results, expected, received),
        "latency_ms": latency_ms(latencies),
        "publish_latency_ms": latency_ms(_gather(results, "published_us")),
        "rates": {
            "events_per_sec": emitted["send_rate"],
            "deliveries_per_sec": round(received / window, 1) if window else 0.0,
        },
        "processes": processes,
        "service_cpu_secs_per_million": _per_million(processes, received),
        "checks": _checks(args, emitted, processes),
    }


def _emitter_usage(emitted: dict[str, Any]) -> dict[str, float]:
    """The emitter measures its own CPU over the emitting window (it exits before the drain)."""
    window = emitted["window_secs"]
    cpu = emitted["cpu_secs"]
    return {
        "pid": 0,
        "cpu_secs": cpu,
        "cores": round(cpu / window, 3) if window else 0.0,
        "peak_rss_mb": 0.0,
        "runqueue_wait_secs": 0.0,
    }


def _gather(results: list[dict[str, Any]], name: str) -> np.ndarray:
    return np.concatenate([np.frombuffer(r[name], dtype=np.int64) for r in results])


def _config(args: argparse.Namespace, tgt: Target) -> dict[str, Any]:
    return {
        "servers": tgt.server,
        "urls": tgt.urls,
        "broker": tgt.broker,
        "consumers": args.consumers,
        "longpoll": args.longpoll,
        "rate": args.rate,
        "duration": args.duration,
        "warmup": args.warmup,
        "client_procs": args.client_procs,
        "emitters": args.emitters,
        "drain_timeout": args.drain_timeout,
        "pad": args.pad,
        "persist": not args.no_persist,
        "cpus": os.cpu_count(),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _deliveries(results: list[dict[str, Any]], expected: int, received: int) -> dict[str, Any]:
    closed: dict[str, int] = {}
    for r in results:
        for code, n in r["closed_during_run"].items():
            closed[code] = closed.get(code, 0) + n
    per_consumer = [n for r in results for n in r["per_consumer_received"]]
    return {
        "expected": expected,
        "received": received,
        "lost": expected - received,
        "duplicates": sum(r["duplicates"] for r in results),
        "out_of_order": sum(r["out_of_order"] for r in results),
        "min_per_consumer": min(per_consumer, default=0),
        "closed_during_run": closed,
    }


def _per_million(processes: dict[str, dict[str, float]], received: int) -> float:
    service = sum(p["cpu_secs"] for name, p in processes.items() if name.startswith("service"))
    return round(service / received * 1e6, 1) if received else 0.0


def _checks(
    args: argparse.Namespace, emitted: dict[str, Any], processes: dict[str, dict[str, float]]
) -> dict[str, Any]:
    generator = [p["cores"] for n, p in processes.items() if n.startswith(("consumers", "emitter"))]
    busiest = max(generator, default=0.0)
    ratio = emitted["send_rate"] / args.rate if args.rate else 0.0
    return {
        "generator_max_cores": busiest,
        "generator_total_cores": round(sum(generator), 3),
        "send_rate_ratio": round(ratio, 4),
        "generator_ok": busiest < GENERATOR_MAX_CORES and ratio >= SEND_RATE_MIN_RATIO,
    }


def plot_latency(report: dict[str, Any], latencies_path: str) -> None:
    """A percentile plot of one run's latencies (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat = report["latency_ms"]
    names = list(lat)[:-1]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(names, [lat[n] for n in names])
    ax.set_ylabel("latency (ms)")
    cfg = report["config"]
    ax.set_title(f"{cfg['consumers']} consumers, {cfg['rate']:g} ev/s, {cfg['servers']}")
    fig.tight_layout()
    fig.savefig(latencies_path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run once, print the table, write the JSON (and the plot)."""
    args = parse_args(argv)
    if not args.url and not args.spawn:
        sys.exit("give --url (repeat for several processes) or --spawn daphne:2")
    report = run(args)
    print(table(report))
    if "hostile" in report:
        print("hostile neighbour:", json.dumps(report["hostile"]))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
    if args.plot:
        plot_latency(report, args.plot)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(queue.Empty):
        sys.exit(main())
