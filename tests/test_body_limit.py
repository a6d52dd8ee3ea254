"""Bounded request bodies: 413 RequestTooLarge before the rest is read, on both servers.

The bound is a full batch of the largest events plus the JSON around them
(``EVENTS_MAX_BODY_BYTES``); here one event of at most 1 KiB, so 66,560 bytes.
"""

from __future__ import annotations

import contextlib
import json
import socket

import httpx
import pytest

from tests.servers import deployment

LIMITS = {"EVENTS_MAX_BATCH": "1", "EVENTS_MAX_EVENT_BYTES": "1024"}
BOUND = 1 * 1024 + 65_536
PATH = "/v2/workspaces/acme/events"


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def running(request):
    with deployment(1, server=request.param, **LIMITS) as started:
        yield started


def exchange(port: int, head: str, body: bytes) -> tuple[int, dict]:
    """Send a request's head and part of its body on a raw socket; read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n")
        # The server may answer and close without reading the rest: what we want.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(body)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
                if b"}" in answer.partition(b"\r\n\r\n")[2]:
                    break
    status_line, _, rest = answer.partition(b"\r\n")
    body_part = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(body_part[body_part.index(b"{") :])


def head(port: int, *lines: str) -> str:
    return "\r\n".join([f"POST {PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}", *lines, ""])


def assert_refused(status: int, body: dict) -> None:
    assert status == 413
    assert body["error"] == "RequestTooLarge"
    assert str(BOUND) in body["message"]


def test_a_huge_declared_length_is_refused_before_the_body(running):
    port = running.ports[0]
    status, body = exchange(
        port, head(port, "Content-Type: application/json", "Content-Length: 10000000000"), b"{"
    )
    assert_refused(status, body)


def test_an_authenticated_huge_declared_length_is_refused_too(running):
    port = running.ports[0]
    lines = ("Content-Type: application/json", f"X-Api-Key: {running.key}")
    status, body = exchange(port, head(port, *lines, f"Content-Length: {BOUND + 1}"), b"{")
    assert_refused(status, body)


def test_a_chunked_body_is_refused_once_it_passes_the_bound(running):
    port = running.ports[0]
    chunk = b"x" * 16384
    framed = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (BOUND // len(chunk) + 2)
    lines = ("Content-Type: application/json", "Transfer-Encoding: chunked")
    status, body = exchange(port, head(port, f"X-Api-Key: {running.key}", *lines), framed)
    assert_refused(status, body)


def test_a_body_within_the_bound_is_still_served(running):
    event = {"type": "orders.created", "payload": {"note": "y" * 500}}
    padded = json.dumps({"events": [event]}) + " " * 60_000  # whitespace within the bound
    answer = httpx.post(
        running.http(0) + PATH,
        content=padded,
        headers={"X-Api-Key": running.key, "Content-Type": "application/json"},
    )
    assert answer.status_code == 201, answer.text
