"""Start and stop service processes for a benchmark (Daphne or uvicorn).

``--spawn daphne:2`` in :mod:`tools.benchmarks.delivery` starts two Daphne processes
on consecutive ports with the same database and broker, like a scaled
deployment on one machine, and stops them at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # tools/benchmarks/ -> the repository
APP = "eventsproject.asgi:application"
START_TIMEOUT_SECS = 30.0
# uvicorn's ``--ws websockets`` (websockets.legacy) is deprecated; ``auto`` is now sansio.
UVICORN_WS = {
    "uvicorn": "websockets-sansio",
    "uvicorn-legacy": "websockets",
    "uvicorn-wsproto": "wsproto",
}
# Production settings: DEBUG on records every SQL query and costs CPU per request.
# The secrets are throwaway values for servers that listen on loopback only.
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "benchmark-only-secret-" + "x" * 40,
    "JWT_SECRET": "benchmark-only-jwt-secret-" + "x" * 40,
    "LOG_LEVEL": "WARNING",
}


def server_argv(kind: str, port: int) -> list[str]:
    """The command line of one service process of ``kind`` on ``port``."""
    if kind == "daphne":
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), APP]
    if kind.startswith("uvicorn"):
        ws = UVICORN_WS.get(kind, "websockets-sansio")
        return [
            *(sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port)),
            *("--loop", "uvloop", "--http", "httptools", "--ws", ws),
            *("--no-access-log", "--log-level", "warning"),
        ]
    raise ValueError(f"unknown server {kind!r}; use daphne, {', '.join(UVICORN_WS)}")


def manage(var_dir: str, *args: str) -> str:
    """Run ``manage.py`` with this benchmark's database; return its stdout."""
    env = {**os.environ, **PRODUCTION_ENV, "EVENTS_VAR_DIR": var_dir}
    done = subprocess.run(  # noqa: S603 - fixed argv, our own manage.py
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def create_api_key(var_dir: str, workspace: str) -> str:
    """Migrate the benchmark database and create an API key of ``workspace``."""
    manage(var_dir, "migrate", "--noinput")
    return manage(var_dir, "createapikey", workspace).splitlines()[-1]


def wait_listening(port: int, timeout: float = START_TIMEOUT_SECS) -> None:
    """Wait until something accepts connections on the loopback port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


@dataclass
class Servers:
    """Service processes started for one benchmark run."""

    kind: str
    count: int
    base_port: int
    var_dir: str
    redis_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        """The base URL of each process."""
        return [f"http://127.0.0.1:{self.base_port + n}" for n in range(self.count)]

    @property
    def pids(self) -> list[int]:
        """The pid of each process."""
        return [proc.pid for proc in self.procs]

    def start(self) -> Servers:
        """Start the processes and wait until they listen."""
        # Production mode refuses to start without collected static files (eventsproject/startup).
        manage(self.var_dir, "collectstatic", "--noinput", "--verbosity", "0")
        env = {**os.environ, **PRODUCTION_ENV, "EVENTS_VAR_DIR": self.var_dir}
        env["REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        for n in range(self.count):
            argv = server_argv(self.kind, self.base_port + n)
            self.procs.append(subprocess.Popen(argv, env=env, cwd=ROOT))  # noqa: S603
        for n in range(self.count):
            wait_listening(self.base_port + n)
        return self

    def stop(self) -> None:
        """Stop the processes."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []

    def __enter__(self) -> Servers:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
