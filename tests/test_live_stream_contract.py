"""The live stream port's contract (events/broker/stream.py), on both implementations.

What the hub, the long poll and publishing rely on: ids in append order, reads
after a cursor, blocking reads woken by an append, a cursor of another epoch or
outside the live buffer refused. ``backend`` (tests/conftest.py) is the memory
broker and the real Redis, built as the service builds them.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from events.broker import Backend
from events.broker.archive_queue import ArchiveQueue
from events.broker.stream import AHEAD_MESSAGE, BEFORE_MESSAGE
from events.positions import RESET_MESSAGE, Position
from kernel.errors import CursorExpired
from kernel.ids import ZERO_ID, format_id
from tests.conftest import BUFFER_SIZE

WAIT_MSECS = 60_000  # a blocking read or claim that only an append ends


def stored(count: int, event_type: str = "tick", start: int = 0) -> list[bytes]:
    """``count`` events as publishing stores them, ``payload`` numbering them."""
    return [orjson.dumps({"type": event_type, "payload": n}) for n in range(start, start + count)]


async def archive_everything(queue: ArchiveQueue) -> int:
    """Claim and acknowledge until nothing is left; how many events."""
    total = 0
    while batch := await queue.claim("contract", count=100, block_ms=0):
        await queue.ack(batch)
        total += len(batch)
    return total


async def still_waiting(task: asyncio.Task) -> bool:
    """Let the task reach its blocking call; whether it is still waiting there."""
    await asyncio.sleep(0.05)
    return not task.done()


async def test_it_keeps_the_order_and_the_ids_of_what_is_appended(backend: Backend):
    first = await backend.stream.append("acme", stored(5))
    second = await backend.stream.append("acme", stored(2, start=5))
    ids = first + second
    assert ids == sorted(ids)
    assert len(set(ids)) == 7
    page = await backend.stream.read_after("acme", ZERO_ID, count=100)
    assert [e["id"] for e in page.events] == ids
    assert [e["payload"] for e in page.events] == list(range(7))
    assert {e["source"]["workspaceId"] for e in page.events} == {"acme"}
    assert page.last_id == ids[-1]
    assert page.epoch == (await backend.stream.stream_state("acme")).epoch


async def test_workspaces_have_streams_of_their_own(backend: Backend):
    [mine] = await backend.stream.append("acme", stored(1, "mine"))
    await backend.stream.append("other", stored(3, "theirs"))
    page = await backend.stream.read_after("acme", ZERO_ID, count=100)
    assert [e["id"] for e in page.events] == [mine]


async def test_it_reads_after_a_cursor_at_most_count_events(backend: Backend):
    ids = await backend.stream.append("acme", stored(6))
    page = await backend.stream.read_after("acme", ids[1], count=3)
    assert [e["id"] for e in page.events] == ids[2:5]
    assert page.last_id == ids[4]
    rest = await backend.stream.read_after("acme", page.last_id, count=100)
    assert [e["id"] for e in rest.events] == ids[5:]
    end = await backend.stream.read_after("acme", ids[-1], count=100)
    assert (end.events, end.last_id) == ([], ids[-1])


async def test_a_blocking_read_wakes_on_append(backend: Backend):
    [before] = await backend.stream.append("acme", stored(1))
    reading = asyncio.create_task(
        backend.stream.read_after("acme", before, count=100, block_ms=WAIT_MSECS)
    )
    assert await still_waiting(reading)
    appended = await backend.stream.append("acme", stored(2))
    page = await asyncio.wait_for(reading, 10)
    assert [e["id"] for e in page.events] == appended


async def test_a_blocking_read_on_a_quiet_stream_ends_empty_at_its_timeout(backend: Backend):
    page = await backend.stream.read_after("quiet", ZERO_ID, count=100, block_ms=50)
    assert (page.events, page.last_id) == ([], ZERO_ID)


async def test_the_state_of_a_new_stream_has_an_epoch_and_no_event(backend: Backend):
    state = await backend.stream.stream_state("new")
    assert state.epoch
    assert (state.first_id, state.last_id, state.floor) == (None, ZERO_ID, ZERO_ID)
    assert await backend.stream.stream_state("new") == state  # made once, then kept


async def test_a_cursor_of_this_epoch_in_the_buffer_is_accepted(backend: Backend):
    ids = await backend.stream.append("acme", stored(3))
    epoch = (await backend.stream.stream_state("acme")).epoch
    for cursor in (Position(ids[0], epoch), Position(ids[0]), Position(ZERO_ID, epoch)):
        state = await backend.stream.check_cursor("acme", cursor)
        assert (state.epoch, state.first_id, state.last_id) == (epoch, ids[0], ids[-1])


async def test_a_cursor_from_another_epoch_is_refused(backend: Backend):
    [event_id] = await backend.stream.append("acme", stored(1))
    with pytest.raises(CursorExpired) as refused:
        await backend.stream.check_cursor("acme", Position(event_id, "another-epoch"))
    assert refused.value.message == RESET_MESSAGE


async def test_a_cursor_ahead_of_the_stream_is_refused(backend: Backend):
    [event_id] = await backend.stream.append("acme", stored(1))
    ahead = format_id(int(event_id.partition("-")[0]) + 1, 0)
    with pytest.raises(CursorExpired) as refused:
        await backend.stream.check_cursor("acme", Position(ahead))
    assert refused.value.message == AHEAD_MESSAGE


async def test_a_bare_id_older_than_the_whole_stream_is_refused(backend: Backend):
    [event_id] = await backend.stream.append("acme", stored(1))
    older = format_id(int(event_id.partition("-")[0]) - 1, 0)  # read before a reset
    with pytest.raises(CursorExpired) as refused:
        await backend.stream.check_cursor("acme", Position(older))
    assert refused.value.message == BEFORE_MESSAGE


async def test_once_archived_the_stream_keeps_its_live_buffer_and_refuses_older_cursors(
    backend: Backend,
):
    ids: list[str] = []
    for start in range(0, 300, 100):
        ids += await backend.stream.append("acme", stored(100, start=start))
    assert await archive_everything(backend.queue) == 300
    kept = await backend.stream.read_after("acme", ids[-BUFFER_SIZE], count=100)
    assert [e["id"] for e in kept.events] == ids[-BUFFER_SIZE + 1 :]
    state = await backend.stream.stream_state("acme")
    assert ZERO_ID < state.floor <= ids[-BUFFER_SIZE]
    for cursor in (ZERO_ID, ids[0]):
        with pytest.raises(CursorExpired):
            await backend.stream.read_after("acme", cursor, count=100)
        with pytest.raises(CursorExpired):
            await backend.stream.check_cursor("acme", Position(cursor, state.epoch))
