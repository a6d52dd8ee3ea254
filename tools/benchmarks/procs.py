"""Processes under test: find them, and measure their CPU time and peak memory."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil


def listening_pids(ports: list[int]) -> list[int]:
    """The pids of the processes listening on these TCP ports (loopback)."""
    found: dict[int, int] = {}
    for conn in psutil.net_connections(kind="tcp"):
        listening = conn.status == psutil.CONN_LISTEN and conn.laddr and conn.pid is not None
        if listening and conn.laddr.port in ports:
            found.setdefault(conn.laddr.port, conn.pid)
    return [found[port] for port in ports if port in found]


def cpu_secs(pid: int) -> float:
    """User plus system CPU seconds a process used so far (0 if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def runqueue_wait_secs(pid: int) -> float:
    """Seconds the process's main thread waited for a CPU while runnable (schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_bytes(pid: int) -> int:
    """The resident set size of a process (0 if it is gone)."""
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


@dataclass
class Watch:
    """CPU seconds between two marks and peak RSS while watching, per process."""

    pids: dict[str, int]
    interval_secs: float = 0.2
    peak_rss: dict[str, int] = field(default_factory=dict)
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu_end: dict[str, float] = field(default_factory=dict)
    wait_start: dict[str, float] = field(default_factory=dict)
    wait_end: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    ended_at: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling memory in a thread."""
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_secs):
            for name, pid in self.pids.items():
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss_bytes(pid))

    def mark_start(self) -> None:
        """Mark the start of the measured window."""
        self.started_at = time.monotonic()
        self.cpu_start = {name: cpu_secs(pid) for name, pid in self.pids.items()}
        self.wait_start = {name: runqueue_wait_secs(pid) for name, pid in self.pids.items()}

    def mark_end(self) -> None:
        """Mark the end of the measured window."""
        self.ended_at = time.monotonic()
        self.cpu_end = {name: cpu_secs(pid) for name, pid in self.pids.items()}
        self.wait_end = {name: runqueue_wait_secs(pid) for name, pid in self.pids.items()}

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        if self._thread:
            self._thread.join()

    @property
    def window_secs(self) -> float:
        """Seconds between the marks."""
        return max(0.0, self.ended_at - self.started_at)

    def report(self) -> dict[str, dict[str, float]]:
        """CPU seconds, cores used in the window, and peak RSS in MB, per process."""
        window_secs = self.window_secs
        out = {}
        for name, pid in self.pids.items():
            used = self.cpu_end.get(name, 0.0) - self.cpu_start.get(name, 0.0)
            waited = self.wait_end.get(name, 0.0) - self.wait_start.get(name, 0.0)
            out[name] = {
                "runqueue_wait_secs": round(waited, 3),
                "pid": pid,
                "cpu_secs": round(used, 3),
                "cores": round(used / window_secs, 3) if window_secs else 0.0,
                "peak_rss_mb": round(self.peak_rss.get(name, 0) / 2**20, 1),
            }
        return out
