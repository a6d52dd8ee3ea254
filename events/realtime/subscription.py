"""A subscription: one consumer's filters, read rights and position, and where its events go.

The feed of a workspace offers each batch of events to every local
subscription; the subscription keeps what its consumer wants and may read,
exactly once, in order (``last_id`` drops anything already seen). Where the
events go depends on the consumer:

- :class:`QueuedSubscription` keeps them in a bounded outbox that the consumer
  takes from (a long poll, or a WebSocket reached only through ASGI);
- :class:`SocketSubscription` writes their frames straight to the client's
  socket (:mod:`events.realtime.sockets`), in the feed's own step.

A consumer that does not keep up (a full outbox, or too many bytes its TCP
connection has not taken) is a slow consumer: it is cut off instead of growing
this process's memory. A consumer whose stream was reset, or trimmed past what
it had, is expired: told (``CursorExpired``), never silently skipped ahead.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Callable, Sequence

from events.event import Envelope
from events.filters import Filters
from events.frames import Delivery, EventFrame
from events.metrics import WEBSOCKET_DELIVERIES
from events.realtime.sockets import DirectSocket
from kernel.caller import Caller
from kernel.errors import CursorExpired


class SlowConsumer(Exception):
    """The consumer did not keep up with its events."""


class Subscription:
    """What one consumer wants from one workspace."""

    def __init__(self, caller: Caller, filters: Filters, *, last_id: str) -> None:
        self.caller = caller
        self.filters = filters
        self.last_id = last_id
        self.epoch = ""  # the stream's epoch ``last_id`` belongs to (set on joining)
        self.overflowed = False
        self.expired: CursorExpired | None = None
        self.delivered = 0
        # The consumer asked for CloudEvents (``format=cloudevents``): it gets those frames.
        self.cloudevents = False
        # Called once when the consumer falls behind: it may be stuck in a send.
        self.on_overflow: Callable[[], None] | None = None
        # Called once when the stream can no longer follow ``last_id`` (reset or trimmed).
        self.on_expire: Callable[[CursorExpired], None] | None = None

    def wants(self, envelope: Envelope) -> bool:
        """Whether this consumer should get the event now."""
        return (
            envelope["id"] > self.last_id
            and self.caller.can_read(envelope)
            and self.filters.matches(envelope)
        )

    def offer_all(self, batch: Sequence[Delivery]) -> int:
        """Take what is wanted of a batch (in id order); return how many."""
        if self.overflowed or self.expired:
            return 0
        wanted = [delivery for delivery in batch if self.wants(delivery[0])][: self.room()]
        if wanted:
            self.last_id = wanted[-1][0]["id"]
            self.accept(wanted)
        return len(wanted)

    def offer(self, envelope: Envelope, frame: EventFrame) -> bool:
        """Take one event if it is wanted."""
        return self.offer_all([(envelope, frame)]) == 1

    def room(self) -> int:
        """How many more events this subscription takes now."""
        return sys.maxsize

    def frame_of(self, frame: EventFrame) -> EventFrame:
        """The event's frame in the format this consumer asked for."""
        return frame.cloudevents if self.cloudevents else frame

    def accept(self, deliveries: list[Delivery]) -> None:
        """Pass on wanted events."""
        raise NotImplementedError

    def change_filters(self, filters: Filters) -> None:
        """Replace the filters."""
        self.filters = filters

    def overflow(self) -> None:
        """Mark the consumer as slow, once, and tell whoever listens."""
        self.overflowed = True
        if self.on_overflow is not None:
            self.on_overflow()

    def expire(self, error: CursorExpired) -> None:
        """Tell the consumer, once, that its position is lost: it re-syncs through search."""
        if self.expired or self.overflowed:
            return
        self.expired = error
        if self.on_expire is not None:
            self.on_expire(error)


class QueuedSubscription(Subscription):
    """Events wait in a bounded outbox until the consumer takes them."""

    def __init__(self, caller: Caller, filters: Filters, *, last_id: str, outbox_max: int) -> None:
        super().__init__(caller, filters, last_id=last_id)
        self.outbox_max = outbox_max
        self.outbox: deque[Delivery] = deque()
        self._ready = asyncio.Event()

    def expire(self, error: CursorExpired) -> None:
        """Expire, and wake whoever waits: ``take`` raises the error."""
        super().expire(error)
        self._ready.set()

    def accept(self, deliveries: list[Delivery]) -> None:
        if len(self.outbox) + len(deliveries) > self.outbox_max:
            self.outbox.clear()
            self.overflow()
        else:
            self.outbox.extend(deliveries)
        self._ready.set()

    def take(self) -> list[Delivery]:
        """Return and clear what waits to be sent; raise SlowConsumer after an overflow,
        CursorExpired once expired."""
        if self.overflowed:
            raise SlowConsumer()
        if self.expired:
            raise self.expired
        batch = list(self.outbox)
        self.outbox.clear()
        self._ready.clear()
        return batch

    async def wait(self, wait_secs: float | None = None) -> bool:
        """Wait until something waits to be sent; False at the timeout."""
        if self.outbox or self.overflowed or self.expired:
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
        super().change_filters(filters)
        self.outbox = deque((e, f) for e, f in self.outbox if filters.matches(e))


class SocketSubscription(Subscription):
    """Event frames are written to the client's socket as the feed offers them.

    A batch goes out as one write. The socket's unsent bytes are the outbox
    here: past ``buffer_max`` the consumer is slow.
    """

    def __init__(
        self, caller: Caller, filters: Filters, *, socket: DirectSocket, buffer_max: int
    ) -> None:
        super().__init__(caller, filters, last_id="")
        self.socket = socket
        self.buffer_max = buffer_max

    def accept(self, deliveries: list[Delivery]) -> None:
        if len(deliveries) == 1:
            data = self.frame_of(deliveries[0][1]).wire
        else:
            data = b"".join(self.frame_of(frame).wire for _, frame in deliveries)
        if not self.socket.write(data):
            return  # closing: the disconnect that follows removes this subscription
        self.delivered += len(deliveries)
        WEBSOCKET_DELIVERIES.add(deliveries)
        if self.socket.buffered() > self.buffer_max:
            self.overflow()
