"""Real service processes on loopback ports, for tests of the scaled deployment."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECS = 30


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Deployment:
    """Service processes sharing one Redis and one database, and a key of ``acme``."""

    ports: list[int]
    key: str
    env: dict[str, str]
    server: str = "daphne"
    processes: list[subprocess.Popen] = field(default_factory=list)
    output: Path | None = None

    def http(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def ws(self, index: int, query: str = "") -> str:
        base = f"ws://127.0.0.1:{self.ports[index]}/v2/workspaces/acme/events"
        return f"{base}?{query}" if query else base

    def restart(self, index: int) -> None:
        """Stop process ``index`` and start a new one (same database, a new port)."""
        _stop([self.processes[index]])
        self.ports[index], self.processes[index] = _start(self.server, self.env, self.output)
        wait_until_up(self.ports[index], self.processes[index])


def manage(env: dict[str, str], *args: str) -> str:
    """Run a management command of the project; return its standard output."""
    result = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def wait_until_up(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/v2/schema", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not answer in {START_TIMEOUT_SECS} s")


SERVERS = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}"],
    "uvicorn": [
        *("-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}"),
        *("--loop", "uvloop", "--ws", "websockets-sansio"),
    ],
}


# The servers as the image and ``serve`` run them, and uvicorn with the fast paths off
# (EVENTS_DIRECT_WRITES=false: its backpressure still bounds a slow consumer; Daphne's
# buffers do not, see README): ``deployment(1, **SETUPS[name], ...)``.
SETUPS: dict[str, dict[str, str]] = {
    "daphne": {"server": "daphne"},
    "uvicorn": {"server": "uvicorn"},
    "uvicorn-asgi": {"server": "uvicorn", "EVENTS_DIRECT_WRITES": "false"},
}


def _start(
    server: str, env: dict[str, str], output: Path | None = None
) -> tuple[int, subprocess.Popen]:
    port = free_port()
    argv = [sys.executable, *(a.format(port=port) for a in SERVERS[server])]
    with output.open("ab") if output else open(os.devnull, "wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            [*argv, "eventsproject.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return port, process


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        process.wait(timeout=30)  # a stop drains first (events.realtime.lifecycle)


@contextmanager
def deployment(
    count: int, *, server: str = "daphne", output: Path | None = None, **settings: str
) -> Iterator[Deployment]:
    """Start ``count`` processes of ``server`` with the given environment; stop them after.

    ``output``: a file that gets the processes' standard output and error (else discarded).
    """
    with tempfile.TemporaryDirectory() as var_dir:
        env = {**os.environ, "EVENTS_VAR_DIR": var_dir, "DJANGO_DEBUG": "true", **settings}
        manage(env, "migrate", "--verbosity", "0")
        key = manage(env, "createapikey", "acme", "--name", "tests")
        running = Deployment([], key, env, server, output=output)
        try:
            _start_all(running, [env] * count)
            yield running
        finally:
            _stop(running.processes)


def _start_all(running: Deployment, envs: list[dict[str, str]]) -> None:
    """Start a process per environment, then wait until each answers."""
    for env in envs:
        port, process = _start(running.server, env, running.output)
        running.ports.append(port)
        running.processes.append(process)
    for port, process in zip(running.ports, running.processes, strict=True):
        wait_until_up(port, process)


@contextmanager
def hosts(count: int, *, output: Path | None = None, **settings: str) -> Iterator[Deployment]:
    """``count`` Daphne processes as on separate hosts: each its own ``EVENTS_VAR_DIR``.

    What they share is in ``settings`` (``DATABASE_URL``, ``REDIS_URL``): no SQLite file,
    no development secret of a shared folder. Each host migrates, as the image does at its
    start; host 0 creates the key.
    """
    with contextlib.ExitStack() as stack:
        envs = [
            {
                **os.environ,
                "EVENTS_VAR_DIR": stack.enter_context(tempfile.TemporaryDirectory()),
                "DJANGO_DEBUG": "true",
                **settings,
            }
            for _ in range(count)
        ]
        for env in envs:  # the database once, then each host's own SQLite history file
            manage(env, "migrate", "--verbosity", "0")
        running = Deployment([], manage(envs[0], "createapikey", "acme"), envs[0], output=output)
        try:
            _start_all(running, envs)
            yield running
        finally:
            _stop(running.processes)


@contextmanager
def one_server(env: dict[str, str]) -> Iterator[int]:
    """One Daphne process with exactly this environment (nothing migrated); yields its port."""
    port, process = _start("daphne", env)
    try:
        wait_until_up(port, process)
        yield port
    finally:
        _stop([process])
