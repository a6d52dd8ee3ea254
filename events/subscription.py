"""A subscription: one consumer's filters, read rights, position and outbox.

The feed of a workspace offers each event to every local subscription; the
subscription keeps what its consumer wants and may read, exactly once, in
order (``last_id`` drops anything already seen), in a bounded outbox. A
consumer that lets the outbox fill up is a slow consumer: it is cut off
instead of growing this process's memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from events.event import Envelope
from events.filters import Filters
from workspaces.caller import Caller

Sender = Callable[[list[str]], Awaitable[None]]


class SlowConsumer(Exception):
    """The consumer did not keep up with its events."""


class Subscription:
    """What one consumer wants from one workspace, and what waits to be sent."""

    def __init__(self, caller: Caller, filters: Filters, *, last_id: str, outbox_max: int) -> None:
        self.caller = caller
        self.filters = filters
        self.last_id = last_id
        self.outbox_max = outbox_max
        self.outbox: deque[tuple[Envelope, str]] = deque()
        self.overflowed = False
        self._ready = asyncio.Event()
        self.delivered = 0
        # Called once when the outbox overflows: the consumer may be stuck in a send.
        self.on_overflow: Callable[[], None] | None = None

    def wants(self, envelope: Envelope) -> bool:
        """Whether this consumer should get the event now."""
        return (
            envelope["id"] > self.last_id
            and self.caller.can_read(envelope)
            and self.filters.matches(envelope)
        )

    def offer(self, envelope: Envelope, frame: str) -> bool:
        """Queue an event the feed dispatches; False if it was not wanted."""
        if self.overflowed or not self.wants(envelope):
            return False
        self.last_id = envelope["id"]
        if len(self.outbox) >= self.outbox_max:
            self.overflowed = True
            self.outbox.clear()
            if self.on_overflow is not None:
                self.on_overflow()
        else:
            self.outbox.append((envelope, frame))
        self._ready.set()
        return True

    def take(self) -> list[tuple[Envelope, str]]:
        """Return and clear what waits to be sent; raise SlowConsumer after an overflow."""
        if self.overflowed:
            raise SlowConsumer()
        batch = list(self.outbox)
        self.outbox.clear()
        self._ready.clear()
        return batch

    async def wait(self, wait_secs: float | None = None) -> bool:
        """Wait until something waits to be sent; False at the timeout."""
        if self.outbox or self.overflowed:
            return True
        if wait_secs is None:  # the WebSocket sender's case: no timer per wait
            await self._ready.wait()
            return True
        try:
            await asyncio.wait_for(self._ready.wait(), wait_secs)
        except TimeoutError:
            return False
        return True

    def change_filters(self, filters: Filters) -> None:
        """Replace the filters; queued events that no longer match are dropped."""
        self.filters = filters
        kept = [(e, f) for e, f in self.outbox if filters.matches(e)]
        self.outbox = deque(kept)
