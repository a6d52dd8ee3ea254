"""Sweep: the delivery benchmark over (consumers, events/s) pairs and server modes, and a plot.

    python -m tools.benchmarks.sweep --modes daphne:2,uvicorn:2 --points 100x100,100x200,100x500 \
        --duration 15 --json sweep.json --plot sweep.png

Each point starts fresh service processes (``--spawn``), runs
:mod:`tools.benchmarks.delivery` and keeps its report; the plot shows p99 latency
against the deliveries per second achieved, one line per mode.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tools.benchmarks import delivery
from tools.benchmarks.stats import table


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """The sweep's own options; the rest go to every delivery run."""
    p = argparse.ArgumentParser(prog="python -m tools.benchmarks.sweep", description=__doc__)
    p.add_argument("--modes", default="daphne:2,uvicorn:2", help="server:N list (--spawn)")
    p.add_argument("--points", default="100x100,100x200,100x500", help="CONSUMERSxRATE list")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--json", default="", help="all reports")
    p.add_argument("--plot", default="", help="p99 against deliveries/s (PNG)")
    return p.parse_known_args(argv)


def run_point(mode: str, consumers: int, rate: str, rest: list[str]) -> dict[str, Any]:
    """One delivery run."""
    argv = ["--spawn", mode, "--consumers", str(consumers), "--rate", rate, *rest]
    report = delivery.run(delivery.parse_args(_embedded(argv)))
    print(table(report), flush=True)
    return report


def _embedded(argv: list[str]) -> list[str]:
    """``embedded-daphne:1`` means one Daphne process on the in-memory broker."""
    mode = argv[1]
    if mode.startswith("embedded-"):
        return ["--spawn", mode.removeprefix("embedded-"), "--broker", "memory", *argv[2:]]
    return argv


def plot(reports: list[dict[str, Any]], path: str) -> None:
    """p99 (log scale) against achieved deliveries/s, one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for mode in dict.fromkeys(r["mode"] for r in reports):
        points = sorted(
            (r["rates"]["deliveries_per_sec"], r["latency_ms"]["p99"])
            for r in reports
            if r["mode"] == mode
        )
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=mode)
    ax.axhline(10, color="grey", linestyle="--", linewidth=0.8, label="10 ms target")
    ax.set_yscale("log")
    ax.set_xlabel("deliveries per second (consumers x events/s)")
    ax.set_ylabel("p99 delivery latency (ms)")
    ax.set_title("events service: p99 latency against load (2 cores, all on one machine)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run every point of every mode; write the reports and the plot."""
    args, rest = parse_args(argv)
    reports = []
    for mode in args.modes.split(","):
        for point in args.points.split(","):
            consumers, _, rate = point.partition("x")
            for _ in range(args.repeat):
                report = run_point(mode, int(consumers), rate, rest)
                reports.append({"mode": mode, **report})
    if args.json:
        with open(args.json, "w") as out:
            json.dump(reports, out, indent=2)
    if args.plot:
        plot(reports, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
