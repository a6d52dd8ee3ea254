"""A TCP forwarder on one loopback port, to a backend port the test can switch.

An ``EventSource`` reconnects to the URL it was given: the forwarder stands where a
load balancer would, in front of two service processes. Each connection goes to the
backend of the moment it arrives; a backend that closes (or dies) closes its clients.
``pages`` are answered by the forwarder itself (a page of the test, served from the
same origin as the stream).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Forwarder:
    """Forwards every new connection to ``target`` (a port on 127.0.0.1)."""

    def __init__(self, target: int, pages: dict[str, bytes] | None = None) -> None:
        self.target = target
        self.pages = pages or {}
        self.port = 0
        self.pipes: set[asyncio.Task] = set()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode().partition("?")[0]
            if path in self.pages:
                writer.write(_html(self.pages[path]))
                await writer.drain()
                writer.close()
                return
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except (OSError, IndexError, asyncio.IncompleteReadError):
            writer.close()
            return
        backend_writer.write(head)
        for pipe in (_pipe(reader, backend_writer), _pipe(backend_reader, writer)):
            task = asyncio.get_running_loop().create_task(pipe)
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)


def _html(body: bytes) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@asynccontextmanager
async def forwarding(
    target: int, pages: dict[str, bytes] | None = None
) -> AsyncIterator[Forwarder]:
    """A forwarder listening on a free port (``.port``) until the block ends."""
    forwarder = Forwarder(target, pages)
    server = await asyncio.start_server(forwarder._connection, "127.0.0.1", 0)
    forwarder.port = server.sockets[0].getsockname()[1]
    try:
        yield forwarder
    finally:
        server.close()
        for task in list(forwarder.pipes):
            task.cancel()
        await asyncio.gather(*forwarder.pipes, return_exceptions=True)
