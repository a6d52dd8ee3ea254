"""Markdown tables of benchmark reports, for docs/SIZING.md.

    python -m tools.benchmarks.report sweep.json [more.json ...]

Reads what ``benchmarks.sweep --json`` or ``benchmarks.delivery --json`` wrote.
"""

from __future__ import annotations

import json
import sys
from typing import Any

HEADER = (
    "| mode | consumers | events/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
    "| lost | dup | ooo | service cores | CPU-s / M deliveries | peak RSS / process MB "
    "| service waited for CPU | generator busiest core | load |"
)


def load(paths: list[str]) -> list[dict[str, Any]]:
    """Every report in these files."""
    reports: list[dict[str, Any]] = []
    for path in paths:
        with open(path) as source:
            data = json.load(source)
        reports.extend(data if isinstance(data, list) else [data])
    return reports


def row(report: dict[str, Any]) -> str:
    """One table row."""
    cfg, dl, lat = report["config"], report["deliveries"], report["latency_ms"]
    services = [p for n, p in report["processes"].items() if n.startswith("service")]
    cores = sum(p["cores"] for p in services)
    mode = report.get("mode") or f"{cfg['servers']}:{len(cfg['urls'])}"
    cells = [
        f"{mode} ({cfg['broker']})",
        cfg["consumers"],
        f"{cfg['rate']:g}",
        f"{report['rates']['deliveries_per_sec']:,.0f}",
        *(lat[k] for k in ("p50", "p90", "p99", "p99.9", "max")),
        dl["lost"],
        dl["duplicates"],
        dl["out_of_order"],
        f"{cores:.2f}",
        report["service_cpu_secs_per_million"],
        max(p["peak_rss_mb"] for p in services),
        _waited(services),
        report["checks"]["generator_max_cores"],
        cfg.get("loadavg_1m_at_end", "-"),
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _waited(services: list[dict[str, Any]]) -> str:
    """Run-queue wait as a share of CPU time: near 0 on a quiet machine."""
    cpu = sum(p["cpu_secs"] for p in services)
    waited = sum(p.get("runqueue_wait_secs", 0.0) for p in services)
    return f"{waited / cpu:.0%} of its CPU time" if cpu and waited else "-"


def main(argv: list[str] | None = None) -> int:
    """Print the table."""
    paths = argv if argv is not None else sys.argv[1:]
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    for report in load(paths):
        print(row(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
