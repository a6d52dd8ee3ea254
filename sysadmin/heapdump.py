"""Heap dumps on demand: at most one per interval per process, written off the loop.

:func:`dump` writes ``<HEAPDUMP_DIR>/<time>-<replica>.heapsnapshot``, keeps the
newest few, and returns where it is. :class:`DumpGate` refuses a dump while
another runs or within ``HEAPDUMP_MIN_INTERVAL_SECS`` of the last one.

A snapshot holds the text of the process's strings, so it is private: the folder
is 0700, each file 0600, and every string is redacted first (:func:`redactor`):
the settings' secrets (``DJANGO_SECRET_KEY``, ``JWT_SECRET``,
``EVENTS_ADMIN_TOKEN``, passwords in ``REDIS_URL`` / ``ELASTICSEARCH_URL``)
wherever they appear, API keys, JWTs and ``name=secret`` pairs.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from django.conf import settings

from kernel.errors import TooManyRequests
from kernel.redaction import REDACTED, redact_text
from sysadmin.heapsnapshot import take_snapshot

SUFFIX = ".heapsnapshot"
KEEP_FILES = 3
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class HeapDump:
    """A written snapshot: its file and what it holds."""

    path: Path
    size: int
    node_count: int
    edge_count: int


class DumpGate:
    """At most one dump per interval (and never two at once) in this process."""

    def __init__(self) -> None:
        self.last_started: float | None = None

    def enter(self, interval_secs: float) -> None:
        """Claim the right to dump now, or raise 429 with the seconds to wait."""
        now = time.monotonic()
        if self.last_started is not None and now - self.last_started < interval_secs:
            wait = math.ceil(interval_secs - (now - self.last_started))
            raise TooManyRequests(
                f"one heap dump per {interval_secs:.0f} seconds; retry in {wait}",
                retry_after_secs=max(1, wait),
            )
        self.last_started = now

    def reset(self) -> None:
        """Forget the last dump (tests)."""
        self.last_started = None


gate = DumpGate()


def _file_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    replica = "".join(c if c.isalnum() or c in "-_" else "_" for c in settings.EVENTS_REPLICA)
    return f"{stamp}-{replica}{SUFFIX}"


def _prune(directory: Path) -> None:
    files = sorted(directory.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP_FILES:]:
        old.unlink(missing_ok=True)


def configured_secrets() -> list[str]:
    """The secrets of this process's settings, longest first (masked wherever they appear)."""
    values = [settings.SECRET_KEY, settings.JWT_SECRET, settings.EVENTS_ADMIN_TOKEN]
    for url in (settings.REDIS_URL, settings.ELASTICSEARCH_URL):
        password = urlsplit(url).password if url else None
        values.append(password or "")
    return sorted({value for value in values if len(value) >= 8}, key=len, reverse=True)


def redactor() -> Callable[[str], str]:
    """A function that masks the configured secrets, API keys, JWTs and ``name=secret``."""
    known = configured_secrets()

    def redact(text: str) -> str:
        for secret in known:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return redact_text(text)

    return redact


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def write_dump(directory: Path) -> HeapDump:
    """Snapshot the heap into a new private file in ``directory`` (blocking)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)  # also when it existed before, or the umask had its say
    snapshot = take_snapshot(redactor())
    data = orjson.dumps(snapshot)
    meta = snapshot["snapshot"]
    del snapshot
    path = directory / _file_name()
    _write_private(path, data)
    _prune(directory)
    return HeapDump(path, len(data), meta["node_count"], meta["edge_count"])


async def dump() -> HeapDump:
    """Write a heap snapshot in a worker thread, leaving the event loop free."""
    return await asyncio.to_thread(write_dump, Path(settings.HEAPDUMP_DIR))


async def read_chunks(path: Path) -> AsyncIterator[bytes]:
    """Stream a file without blocking the event loop."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)
