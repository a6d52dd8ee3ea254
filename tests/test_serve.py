"""``./scripts/serve``, the README's first command: it serves, stops on Ctrl-C, and starts
again at once on the same port."""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404: runs the project's own script
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, free_port

START_SECS = 60


def start_serve(port: int, var_dir: Path, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "PORT": str(port), "EVENTS_VAR_DIR": str(var_dir), **env}
    environ.pop("DJANGO_DEBUG", None)
    return subprocess.Popen(  # noqa: S603  # nosec B603: a fixed command line
        [str(ROOT / "scripts" / "serve")],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_line(process: subprocess.Popen, words: str) -> str:
    """Read the output until a line holds ``words``; the lines read."""
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + START_SECS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if words in line:
            return "".join(seen)
    pytest.fail(f"no line with {words!r}:\n{''.join(seen)}")


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_serve_answers_stops_on_ctrl_c_and_starts_again_on_the_same_port(server, tmp_path):
    port = free_port()
    first = start_serve(port, tmp_path, SERVER=server)
    try:
        wait_for_line(first, "listens on")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/sys/healthcheck").status_code == 200
            first.send_signal(signal.SIGINT)  # while a keep-alive connection is open
            first.wait(timeout=30)
    finally:
        first.kill()
    second = start_serve(port, tmp_path, SERVER=server)
    try:
        output = wait_for_line(second, "listens on")
        assert "already running" not in output
        assert httpx.get(f"http://127.0.0.1:{port}/sys/healthcheck").status_code == 200
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=30)


def test_serve_runs_uvicorn_by_default(tmp_path):
    port = free_port()
    process = start_serve(port, tmp_path)
    try:
        output = wait_for_line(process, "listens on")
    finally:
        process.send_signal(signal.SIGINT)
        output += process.communicate(timeout=30)[0]
    assert '"logger":"uvicorn' in output


def test_serve_refuses_an_unknown_server(tmp_path):
    process = start_serve(free_port(), tmp_path, SERVER="gunicorn")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "SERVER is uvicorn (the default) or daphne" in output
