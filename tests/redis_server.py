"""A Redis server of the test's own, on a free loopback port, for fault tests.

Fault tests stop, kill and restart Redis; they must never do that to the shared server
at 127.0.0.1:6379. ``RedisServer`` starts ``redis-server`` in a temporary folder, stops it
by its PID, and restarts it on the same port with its data kept (append-only file) or
lost (no persistence: what a restart of a cache-like Redis does).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.servers import free_port

START_TIMEOUT_SECS = 10


class RedisServer:
    """One ``redis-server`` process owned by a test."""

    def __init__(self, *, persistent: bool, options: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.persistent = persistent
        self.options = options  # more redis-server flags, e.g. ("--maxclients", "40")
        self.dir = Path(tempfile.mkdtemp(prefix="events-redis-"))
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        """The URL of database ``db`` of this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        persistence = ["--appendonly", "yes", "--appendfsync", "always"]
        if not self.persistent:
            persistence = ["--appendonly", "no"]
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        argv += ["--save", "", *persistence, *self.options]
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_SECS
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server by its PID: SIGTERM (a clean shutdown) or SIGKILL."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None

    def restart(self, *, keep_data: bool) -> None:
        """Stop and start again on the same port; without ``keep_data`` it starts empty."""
        self.stop(kill=not keep_data)
        if not keep_data:
            for path in self.dir.iterdir():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop(kill=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def redis_server(
    *, persistent: bool = True, options: tuple[str, ...] = ()
) -> Iterator[RedisServer]:
    """A running ``RedisServer`` for the duration of the block."""
    server = RedisServer(persistent=persistent, options=options)
    server.start()
    try:
        yield server
    finally:
        server.close()
