"""Latency percentiles and the readable table of a run."""

from __future__ import annotations

from typing import Any

import numpy as np

PERCENTILES = {"p50": 50, "p90": 90, "p99": 99, "p99.9": 99.9}


def latency_ms(latencies_us: np.ndarray) -> dict[str, float]:
    """p50, p90, p99, p99.9, max and mean in milliseconds."""
    if latencies_us.size == 0:
        return dict.fromkeys([*PERCENTILES, "max", "mean"], 0.0)
    values = np.percentile(latencies_us, list(PERCENTILES.values())) / 1000
    out = {name: round(float(v), 2) for name, v in zip(PERCENTILES, values, strict=True)}
    out["max"] = round(float(latencies_us.max()) / 1000, 2)
    out["mean"] = round(float(latencies_us.mean()) / 1000, 2)
    return out


def table(report: dict[str, Any]) -> str:
    """A readable summary of one run."""
    cfg, ev, dl, lat = (
        report["config"],
        report["events"],
        report["deliveries"],
        report["latency_ms"],
    )
    lines = [
        f"servers {cfg['servers']} x{len(cfg['urls'])}, broker {cfg['broker']}: "
        f"{cfg['consumers']} ws + {cfg['longpoll']} long-poll consumers, "
        f"{cfg['rate']} events/s for {cfg['duration']} s (warm-up {cfg['warmup']} s); "
        f"machine load {cfg['loadavg_1m_at_end']} on {cfg['cpus']} CPUs",
        f"events    sent {ev['measured']}  acked {ev['acked']}  errors {ev['errors']}  "
        f"send rate {ev['send_rate']}/s  max lag {ev['max_lag_ms']} ms",
        f"delivery  expected {dl['expected']}  received {dl['received']}  "
        f"lost (not received {cfg['drain_timeout']:g} s after the last emit) {dl['lost']}  "
        f"duplicates {dl['duplicates']}  out-of-order {dl['out_of_order']}  "
        f"closed {dl['closed_during_run'] or '-'}",
        f"rate      {report['rates']['deliveries_per_sec']} deliveries/s "
        "(from the first measured emit to the last delivery)",
        "latency   " + "  ".join(f"{k} {v} ms" for k, v in lat.items()),
        "of which to publish (event id time - send time, 1 ms resolution): "
        + "  ".join(f"{k} {v}" for k, v in report["publish_latency_ms"].items() if k != "mean"),
    ]
    for name, proc in report["processes"].items():
        lines.append(
            f"  {name:<12} cpu {proc['cpu_secs']:>7.2f} s  {proc['cores']:>5.2f} cores  "
            f"peak rss {proc['peak_rss_mb']:>7.1f} MB  "
            f"waited for a CPU {proc['runqueue_wait_secs']:>6.2f} s"
        )
    lines.append(f"service   {report['service_cpu_secs_per_million']} CPU-s per million deliveries")
    checks = report["checks"]
    lines.append(
        f"generator busiest process {checks['generator_max_cores']:.2f} cores; "
        f"send rate {checks['send_rate_ratio']:.3f} of target -> "
        f"{'OK' if checks['generator_ok'] else 'SUSPECT: the generator may be the bottleneck'}"
    )
    return "\n".join(lines)
