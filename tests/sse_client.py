"""A Server-Sent Events reader for tests: messages as the HTML standard parses them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

# Not a timing assertion: only so that a stream that never answers fails the test.
HANG_GUARD_SECS = 30


@dataclass
class Message:
    """One dispatched message, or one comment line (``: ping``)."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


async def messages(response: httpx.Response) -> AsyncIterator[Message]:
    """Messages and comments in the order they come, until the response ends."""
    fields: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line == "":
            if fields:
                yield Message(**fields)
            fields = {}
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "":
            yield Message(comment=value)
        elif name == "data":
            fields["data"] = f"{fields['data']}\n{value}" if "data" in fields else value
        elif name == "retry":
            fields["retry"] = int(value)
        elif name in ("event", "id"):
            fields[name] = value


@asynccontextmanager
async def stream(
    base_url: str,
    query: str = "",
    headers: dict[str, str] | None = None,
    workspace_id: str = "acme",
) -> AsyncIterator[httpx.Response]:
    """``GET .../events/stream`` with the response's body still to read."""
    timeout = httpx.Timeout(HANG_GUARD_SECS)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        url = f"/v2/workspaces/{workspace_id}/events/stream" + (f"?{query}" if query else "")
        async with client.stream("GET", url, headers=headers or {}) as response:
            yield response


class Reader:
    """One response's messages, read a few at a time (a response's body is read once)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.messages = messages(response)
        self.comments: list[str] = []

    async def next(self) -> Message | None:
        """The next message or comment; None once the response ended."""
        try:
            return await anext(self.messages)
        except StopAsyncIteration:
            return None

    async def events(self, count: int) -> list[Message]:
        """The next ``count`` messages with data (comments and ``retry:`` kept aside)."""
        found: list[Message] = []
        while len(found) < count:
            message = await self.next()
            assert message is not None, f"the stream ended after {len(found)} of {count}"
            if message.comment is not None:
                self.comments.append(message.comment)
            elif message.data:
                found.append(message)
        return found

    async def rest(self) -> list[Message]:
        """Every message until the server ends the response."""
        found = []
        while (message := await self.next()) is not None:
            found.append(message)
        return found
