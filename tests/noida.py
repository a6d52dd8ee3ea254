"""noida-db, a local server speaking the Elasticsearch 8 API, for the history's tests.

Without ``ELASTICSEARCH_TEST_URL`` the test session starts its own on a free
port with a temporary data directory and stops it at the end, so a plain
``pytest`` works on a fresh machine.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

READY_SECS = 30.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    """Whether an Elasticsearch API answers at ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310 (a local test URL)
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until(check, secs: float = READY_SECS) -> None:
    """Poll ``check()`` until true; raise after ``secs``."""
    deadline = time.monotonic() + secs
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("noida-db did not answer")
        time.sleep(0.1)


@dataclass
class Noida:
    """A noida-db server this test session controls (``managed``) or was given."""

    url: str
    data_dir: Path | None = None

    @property
    def managed(self) -> bool:
        """Whether the session started it (and so may stop and start it)."""
        return self.data_dir is not None

    def _run(self, *args: str) -> None:
        command = [_binary(), *args, "--data-dir", str(self.data_dir)]
        subprocess.run(command, check=True, capture_output=True, timeout=60)  # noqa: S603

    def stop_elasticsearch(self) -> None:
        """Stop the Elasticsearch service (its data is kept)."""
        self._run("stop", "elasticsearch")
        wait_until(lambda: not answers(self.url))

    def start_elasticsearch(self) -> None:
        """Start the Elasticsearch service again."""
        self._run("start", "elasticsearch")
        wait_until(lambda: answers(self.url))

    def down(self) -> None:
        """Stop the server and remove its data."""
        self._run("down")
        shutil.rmtree(self.data_dir, ignore_errors=True)  # type: ignore[arg-type]


def _binary() -> str:
    found = shutil.which("noida-db")
    if not found:
        raise RuntimeError("noida-db is not installed: pip install -e '.[dev]'")
    return found


def start_noida() -> Noida:
    """Start noida-db (Elasticsearch only) on a free port with a temporary data dir."""
    port = free_port()
    noida = Noida(f"http://127.0.0.1:{port}", Path(tempfile.mkdtemp(prefix="noida-")))
    noida._run("up", "--only", "elasticsearch", "--elasticsearch-port", str(port))
    wait_until(lambda: answers(noida.url))
    return noida


def delete_indices(url: str, prefix: str) -> None:
    """Remove a test's indices (by name: Elasticsearch 8 refuses wildcard deletes)."""
    with contextlib.suppress(OSError, ValueError):
        with urllib.request.urlopen(f"{url}/{prefix}_v1-*", timeout=10) as reply:  # noqa: S310
            names = list(json.loads(reply.read()))
        for path in [*names, f"_index_template/{prefix}-events"]:
            request = urllib.request.Request(f"{url}/{path}", method="DELETE")  # noqa: S310
            urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 (a local test URL)
