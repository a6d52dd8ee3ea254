"""The emitting process: WebSocket ``emit`` frames at a steady rate.

Events go round robin over a few connections (spread over the service
processes); each connection's events are published in the order sent. The
payload carries the send time, so latency is measured on one clock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from tools.benchmarks import wsclient
from tools.benchmarks.worker import ws_url

ACK_WAIT_SECS = 10.0
NOTHING = "bench-emitter.none"  # the emitter subscribes to no event


@dataclass(frozen=True)
class EmitSpec:
    """How to emit."""

    urls: list[str]
    connections: int
    workspace: str
    api_key: str
    rate: float
    warmup_secs: float
    duration_secs: float
    event_type: str = "bench.tick"
    pad_bytes: int = 0
    persist: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # more payload keys


@dataclass
class EmitState:
    """Counters of the emitter."""

    sent: int = 0
    measured: int = 0
    acked: int = 0
    errors: int = 0
    max_lag_secs: float = 0.0
    seqs: list[int] = field(default_factory=list)
    first_error: str | None = None
    cpu_secs: float = 0.0

    def on_frame(self, data: bytes, _now_ns: int) -> None:
        """Count acks and errors."""
        message = orjson.loads(data)
        if message.get("op") == "ack":
            self.acked += 1
        elif message.get("op") == "error":
            self.errors += 1
            self.first_error = self.first_error or data.decode()[:300]


def main(spec: EmitSpec, phases: Any) -> None:
    """Process entry: warm up, then emit the measured events; report on ``phases``."""
    import uvloop

    uvloop.run(_run(spec, phases))


async def _run(spec: EmitSpec, phases: Any) -> None:
    state = EmitState(seqs=[0] * spec.connections)
    conns = []
    for n in range(spec.connections):
        url = ws_url(spec.urls[n % len(spec.urls)], spec.workspace, NOTHING)
        conns.append(await wsclient.connect(url, state.on_frame, {"X-Api-Key": spec.api_key}))
    phases.put(("connected", time.time()))
    await _phase(spec, conns, state, spec.warmup_secs, measured=False)
    phases.put(("start", time.time()))
    started, cpu_started = time.perf_counter(), time.process_time()
    await _phase(spec, conns, state, spec.duration_secs, measured=True)
    window = time.perf_counter() - started
    state.cpu_secs = time.process_time() - cpu_started
    phases.put(("end", time.time()))
    deadline = time.perf_counter() + ACK_WAIT_SECS
    while state.acked + state.errors < state.sent and time.perf_counter() < deadline:  # noqa: ASYNC110 - counters
        await asyncio.sleep(0.05)
    for conn in conns:
        conn.close()
    phases.put(("result", _result(state, window)))


async def _phase(
    spec: EmitSpec, conns: list[wsclient.WsClient], state: EmitState, secs: float, *, measured: bool
) -> None:
    total = round(spec.rate * secs)
    interval = 1.0 / spec.rate
    pad = "x" * spec.pad_bytes
    start = time.perf_counter()
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) / interval) + 1)
        state.max_lag_secs = max(state.max_lag_secs, now - (start + (due - 1) * interval))
        while sent < due:
            _send(spec, conns, state, measured, pad)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent * interval - time.perf_counter()))


def _send(
    spec: EmitSpec, conns: list[wsclient.WsClient], state: EmitState, measured: bool, pad: str
) -> None:
    index = state.sent % len(conns)
    payload: dict[str, Any] = {"t": time.time_ns(), "e": index, "s": 0, "m": 0}
    if measured:
        payload["s"] = state.seqs[index]
        payload["m"] = 1
        state.seqs[index] += 1
        state.measured += 1
    if pad:
        payload["pad"] = pad
    payload.update(spec.extra)
    event = {"type": spec.event_type, "payload": payload, "options": {"persist": spec.persist}}
    conns[index].send_text(orjson.dumps({"op": "emit", "ref": state.sent, "event": event}))
    state.sent += 1


def _result(state: EmitState, window_secs: float) -> dict[str, Any]:
    return {
        "sent_total": state.sent,
        "measured": state.measured,
        "acked": state.acked,
        "errors": state.errors,
        "first_error": state.first_error,
        "window_secs": round(window_secs, 3),
        "send_rate": round(state.measured / window_secs, 1) if window_secs else 0.0,
        "max_lag_ms": round(state.max_lag_secs * 1000, 2),
        "cpu_secs": round(state.cpu_secs, 3),
    }
