"""The embedded broker's own bookkeeping: a quiet workspace costs no memory over time."""

from __future__ import annotations

import asyncio

from events.broker.memory import MemoryArchiveQueue, MemoryLiveStream
from kernel.ids import ZERO_ID


async def test_reads_that_time_out_or_are_cancelled_leave_no_waiter_behind():
    queue = MemoryArchiveQueue(max_backlog=10)
    live = MemoryLiveStream(buffer_size=10, archive=queue)
    for _ in range(50):  # a feed on a quiet workspace: one timed-out blocking read after another
        page = await live.read_after("quiet", ZERO_ID, count=10, block_ms=1)
        assert page.events == []
        assert await queue.claim("archiver", count=10, block_ms=1) == []
    stream = live._streams["quiet"]
    reading = asyncio.create_task(live.read_after("quiet", ZERO_ID, count=10, block_ms=60_000))
    archiving = asyncio.create_task(queue.claim("archiver", count=10, block_ms=60_000))
    for _ in range(100):  # turns of the event loop until both wait
        if stream.waiters and queue._waiters:
            break
        await asyncio.sleep(0)
    for task in (reading, archiving):  # a feed stopped, an archiver stopped
        task.cancel()
    await asyncio.gather(reading, archiving, return_exceptions=True)
    assert stream.waiters == set()
    assert queue._waiters == set()
