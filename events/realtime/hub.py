"""The hub: this process's fan-out from the broker to its local consumers.

One feed per workspace that has local subscribers reads the workspace's stream
once (one blocking read per process, not per subscriber), encodes each event
once, and offers it to every local subscription. Joining with a position
(``lastEventId``, a long poll cursor) first replays what the broker still
holds after it, then goes on live, with no gap and no repeat.

A feed follows one epoch of its stream (:mod:`events.positions`): when a read
finds the stream reset (another epoch) or trimmed past the feed's position, every
subscription is expired (told, 410 / 4410) and the feed starts again at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from events.broker import get_live_stream
from events.broker.stream import LiveStream, StreamState
from events.event import Envelope
from events.frames import Delivery, event_frame
from events.positions import RESET_MESSAGE, Position
from events.realtime.subscription import Subscription
from kernel import outages
from kernel.errors import CursorExpired

logger = logging.getLogger("events.hub")

READ_COUNT = 500
READ_BLOCK_MSECS = 5_000
RETRY_SECS = 1.0
FEED_LINGER_SECS = 30.0
STOP_WAIT_SECS = 1.0
DISPATCH_SLICE = 32


class Feed:
    """Reads one workspace's stream and offers each event to local subscriptions."""

    def __init__(self, workspace_id: str, state: StreamState) -> None:
        self.workspace_id = workspace_id
        self.position = state.last_id
        # Every subscription was offered everything up to here (``position`` runs ahead
        # of it while a batch goes out in slices): what a poll that got nothing has seen.
        self.dispatched = state.last_id
        self.epoch = state.epoch
        # Offered in the order they joined (a dict is an ordered set).
        self.subscriptions = _Members()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        """Start reading in the background."""
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"feed:{self}")

    async def stop(self) -> None:
        """Stop reading."""
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self.task, STOP_WAIT_SECS)

    def __str__(self) -> str:
        return self.workspace_id

    async def _run(self) -> None:
        stream = get_live_stream()
        while True:
            try:
                await self._step(stream)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._read_failed(exc)
                await asyncio.sleep(RETRY_SECS)

    async def _step(self, stream: LiveStream) -> None:
        epoch = self.epoch
        try:
            page = await stream.read_after(
                self.workspace_id, self.position, count=READ_COUNT, block_ms=READ_BLOCK_MSECS
            )
        except CursorExpired as error:  # trimmed past what the feed had read
            self.start_again(await stream.stream_state(self.workspace_id), error)
            return
        outages.answered(outages.BROKER)
        if self.epoch != epoch:
            return  # a join found the stream reset while this read waited: read again
        if page.epoch != epoch:
            state = await stream.stream_state(self.workspace_id)
            self.start_again(state, CursorExpired(RESET_MESSAGE))
            return
        self.position = page.last_id
        await self.dispatch(page.events)
        if self.epoch == epoch:
            self.dispatched = page.last_id

    def start_again(self, state: StreamState, error: CursorExpired) -> None:
        """Tell every subscription its position is lost, then follow the stream from its end."""
        logger.warning("feed of %s lost its position: %s", self.workspace_id, error.message)
        for subscription in list(self.subscriptions):
            subscription.expire(error)
        self.position = self.dispatched = state.last_id
        self.epoch = state.epoch

    def _read_failed(self, exc: Exception) -> None:
        where = f"the feed of {self.workspace_id}"
        if outages.dependency_of(exc) == outages.BROKER:
            outages.failed(outages.BROKER, exc, where)  # one stack per outage
        else:
            logger.exception("%s could not read the broker", where)

    async def dispatch(self, events: list[Envelope]) -> None:
        """Offer the batch to each subscription, each event encoded once.

        A subscription takes the whole batch in one step (one write to a
        socket), so the busier the stream, the fewer writes per event: a read
        returns everything that came while the last batch went out.
        ``offer_all`` checks what the subscription wants; checking before it too
        doubled the filter work per delivery. An event nobody here wants costs
        one encoding, an event many want saves one check each.

        Every ``DISPATCH_SLICE`` subscriptions the feed lets the event loop
        run what else is ready: an emit waits for a slice, not for the fan-out
        of a whole batch to every local socket, at each of its steps.
        """
        if not self.subscriptions or not events:
            return
        batch = [(envelope, event_frame(envelope, self.epoch)) for envelope in events]
        subscriptions = list(self.subscriptions)
        for start in range(0, len(subscriptions), DISPATCH_SLICE):
            if start:
                await asyncio.sleep(0)
            for subscription in subscriptions[start : start + DISPATCH_SLICE]:
                try:
                    subscription.offer_all(batch)
                except Exception:
                    # One consumer's failure must not stop the feed of everyone else.
                    logger.exception("a subscription of %s failed; cutting it off", self)
                    subscription.overflow()


class Hub:
    """Every feed of this process."""

    def __init__(self) -> None:
        self.feeds: dict[str, Feed] = {}

    def _feed(self, workspace_id: str, state: StreamState) -> Feed:
        """The workspace's feed, following the epoch of ``state`` (just read from the broker)."""
        feed = self.feeds.get(workspace_id)
        if feed is None:
            feed = self.feeds[workspace_id] = Feed(workspace_id, state)
            feed.start()
        elif feed.epoch != state.epoch:  # the feed has not read since the stream was reset
            feed.start_again(state, CursorExpired(RESET_MESSAGE))
        return feed

    async def join(
        self, workspace_id: str, subscription: Subscription, after: Position | None = None
    ) -> None:
        """Add a subscription, starting at the current end or after ``after``.

        CursorExpired if ``after`` is outside the live buffer (another epoch included).
        """
        stream = get_live_stream()
        if after is None:
            feed = self._feed(workspace_id, await stream.stream_state(workspace_id))
            subscription.last_id = feed.position
            subscription.epoch = feed.epoch
            feed.subscriptions.add(subscription)
            return
        state = await stream.check_cursor(workspace_id, after)
        after = Position(after.event_id, state.epoch)
        feed = self._feed(workspace_id, state)
        subscription.last_id = after.event_id
        subscription.epoch = feed.epoch
        held = _Holding(subscription)
        feed.subscriptions.add(held)
        target = feed.position
        try:
            await self._replay(workspace_id, subscription, after, target)
        except BaseException:
            # A failed or cancelled join (the client went away) leaves nothing behind.
            feed.subscriptions.discard(held)
            self._linger_if_idle(feed)
            raise
        feed.subscriptions.discard(held)
        feed.subscriptions.add(subscription)
        held.release()

    @staticmethod
    async def _replay(
        workspace_id: str, subscription: Subscription, after: Position, target: str
    ) -> None:
        stream = get_live_stream()
        position = after.event_id
        while position < target:
            page = await stream.read_after(workspace_id, position, count=READ_COUNT)
            if page.epoch != after.epoch:
                raise CursorExpired(RESET_MESSAGE)
            if page.last_id == position:
                return
            position = page.last_id
            wanted = [envelope for envelope in page.events if subscription.wants(envelope)]
            subscription.offer_all([(e, event_frame(e, page.epoch)) for e in wanted])

    async def leave(self, workspace_id: str, subscription: Subscription) -> None:
        """Remove a subscription; a feed nobody uses stops after a while."""
        feed = self.feeds.get(workspace_id)
        if feed is None:
            return
        feed.subscriptions.discard(subscription)
        self._linger_if_idle(feed)

    def _linger_if_idle(self, feed: Feed) -> None:
        if not feed.subscriptions:
            asyncio.get_running_loop().call_later(FEED_LINGER_SECS, self._stop_if_idle, feed)

    def _stop_if_idle(self, feed: Feed) -> None:
        # Long polls come and go: a feed lingers so the next one finds it warm.
        if feed.subscriptions or self.feeds.get(feed.workspace_id) is not feed:
            return
        del self.feeds[feed.workspace_id]
        if feed.task:
            feed.task.cancel()

    async def close(self) -> None:
        """Stop every feed."""
        feeds, self.feeds = list(self.feeds.values()), {}
        for feed in feeds:
            await feed.stop()


class Member(Protocol):
    """What a feed offers batches to: a subscription, or one held while it replays."""

    def offer_all(self, batch: list[Delivery]) -> int: ...

    def overflow(self) -> None: ...

    def expire(self, error: CursorExpired) -> None: ...


class _Members(dict[Member, None]):
    """The subscriptions of a feed, in the order they joined."""

    def add(self, subscription: Member) -> None:
        self[subscription] = None

    def discard(self, subscription: Member) -> None:
        self.pop(subscription, None)


class _Holding:
    """Stands in for a subscription while it replays, keeping live events aside.

    Once released it passes batches on: a batch that was going out in slices when
    the replay ended still offers itself to the stand-in, not to the subscription.
    """

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.held: list[Delivery] = []
        self.released = False

    def offer_all(self, batch: list[Delivery]) -> int:
        if self.released:
            return self.subscription.offer_all(batch)
        self.held.extend(batch)
        return len(batch)

    def overflow(self) -> None:
        self.subscription.overflow()

    def expire(self, error: CursorExpired) -> None:
        self.subscription.expire(error)

    def release(self) -> None:
        self.released = True
        held, self.held = self.held, []
        self.subscription.offer_all(held)


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def get_hub() -> Hub:
    """The hub of the running event loop (one per process in production)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        for old in [old for old in _hubs if old.is_closed()]:
            del _hubs[old]
        hub = _hubs[loop] = Hub()
    return hub
