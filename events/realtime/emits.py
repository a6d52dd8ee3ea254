"""A connection's emits: published in its order, several per broker round trip when they queue.

A WebSocket client's frames are handled one after another. Publishing each
emit before reading the next frame limited a connection to one broker round
trip, plus a few turns of a busy event loop, per event: under fan-out load the
emits of one connection queued for seconds. Here a frame only queues its
(validated) event; one task per connection publishes whatever waits, in order,
as one batch (one ``XADD`` pipeline), then answers each emit. An emit the
broker refuses is retried alone, so one bad event fails only its own frame.
An emit with an idempotency key (``events.realtime.idempotency``) is published
alone, in its place in the order: its answer may be an earlier one's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from events.event import ClientEvent, Envelope
from events.realtime.idempotency import publish_once
from events.realtime.publishing import publish
from kernel.caller import Caller
from kernel.context import RequestContext

logger = logging.getLogger("events.emits")

# ``answer(ref, envelope, None)`` after a publish, ``answer(ref, None, exc)`` after a failure.
Answer = Callable[[Any, Envelope | None, Exception | None], Awaitable[None]]
# A frame's ref, its event, and its idempotency key (or None).
Waiting = tuple[Any, ClientEvent, str | None]


class EmitPipeline:
    """Publishes one connection's emits in order, batching those that wait."""

    def __init__(
        self,
        workspace_id: str,
        *,
        caller: Caller,
        context: RequestContext,
        answer: Answer,
        max_batch: int,
    ) -> None:
        self.workspace_id = workspace_id
        self.caller = caller
        self.context = context
        self.answer = answer
        self.max_batch = max_batch
        # Bounded: a client emitting faster than the broker takes waits for room.
        self.waiting: asyncio.Queue[Waiting] = asyncio.Queue(max_batch)
        self.task: asyncio.Task | None = None

    async def put(self, ref: Any, event: ClientEvent, key: str | None = None) -> None:
        """Queue an emit (with its idempotency key, if any); it is answered once published."""
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name="emits")
        await self.waiting.put((ref, event, key))

    async def close(self) -> None:
        """Stop publishing (emits not yet published are never answered)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        """The connection's one publishing task: a failure is logged, never its end.

        Dead, it would leave every later emit of the socket unanswered, and once the
        queue is full, the socket's next frame (a ping too) waiting forever.
        """
        while True:
            batch = [await self.waiting.get()]
            while len(batch) < self.max_batch and not self.waiting.empty():
                batch.append(self.waiting.get_nowait())
            try:
                await self._publish(batch)
            except Exception:
                logger.exception("the emits of a connection to %s failed", self.workspace_id)

    async def _publish(self, batch: list[Waiting]) -> None:
        """Publish in order: the emits without a key together, each keyed one alone."""
        plain: list[Waiting] = []
        for item in batch:
            if item[2] is None:
                plain.append(item)
                continue
            await self._publish_plain(plain)
            plain = []
            await self._publish_keyed(item)
        await self._publish_plain(plain)

    async def _publish_plain(self, batch: list[Waiting]) -> None:
        if not batch:
            return
        try:
            envelopes = await publish(
                self.workspace_id,
                [event for _, event, _ in batch],
                caller=self.caller,
                context=self.context,
            )
        except Exception as exc:
            await self._after_failure(batch, exc)
            return
        for (ref, _, _), envelope in zip(batch, envelopes, strict=True):
            await self._answer(ref, envelope, None)

    async def _publish_keyed(self, item: Waiting) -> None:
        ref, event, key = item
        try:
            emitted = await publish_once(
                self.workspace_id, [event], caller=self.caller, context=self.context, key=key
            )
        except Exception as exc:
            await self._answer(ref, None, exc)
            return
        await self._answer(ref, emitted.envelopes[0], None)

    async def _answer(self, ref: Any, envelope: Envelope | None, exc: Exception | None) -> None:
        """Answer one emit; one answer that fails does not cost the others theirs."""
        try:
            await self.answer(ref, envelope, exc)
        except Exception:
            logger.exception("the answer to emit %.80r could not be sent", ref)

    async def _after_failure(self, batch: list[Waiting], exc: Exception) -> None:
        if len(batch) == 1:
            await self._answer(batch[0][0], None, exc)
            return
        for item in batch:
            await self._publish_plain([item])
