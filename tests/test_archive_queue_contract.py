"""The archive queue port's contract (events/broker/archive_queue.py), on both implementations.

What the archiver, the health check and the backlog metric rely on: every appended
event is claimed, in batches, by one consumer at a time; once acknowledged it is
never delivered again; a dead consumer's claim is taken over; the backlog counts
what is not archived yet. ``backend`` (tests/conftest.py) is the memory broker and
the real Redis, built as the service builds them.
"""

from __future__ import annotations

import asyncio

from events.broker import Backend
from events.broker.archive_queue import ArchiveItem, ArchiveQueue
from tests.helpers import eventually
from tests.test_live_stream_contract import WAIT_MSECS, archive_everything, still_waiting, stored


def keys(items: list[ArchiveItem]) -> list[tuple[str, str]]:
    return [(item.workspace_id, item.envelope["id"]) for item in items]


async def claim_all(queue: ArchiveQueue, consumer: str = "alive") -> list[ArchiveItem]:
    """Claim (without acknowledging) until nothing more comes."""
    claimed: list[ArchiveItem] = []
    while batch := await queue.claim(consumer, count=100, block_ms=0):
        claimed += batch
    return claimed


async def test_every_appended_event_is_claimed_in_order_with_its_workspace(backend: Backend):
    acme = await backend.stream.append("acme", stored(3))
    other = await backend.stream.append("other", stored(2, "other"))
    claimed = await claim_all(backend.queue)
    assert sorted(keys(claimed)) == sorted(
        [("acme", i) for i in acme] + [("other", i) for i in other]
    )
    assert [i for ws, i in keys(claimed) if ws == "acme"] == acme
    assert [item.envelope["payload"] for item in claimed if item.workspace_id == "acme"] == [
        0,
        1,
        2,
    ]


async def test_a_claim_takes_at_most_count_and_the_next_claim_the_rest(backend: Backend):
    ids = await backend.stream.append("acme", stored(5))
    first = await backend.queue.claim("alive", count=2, block_ms=0)
    rest = await claim_all(backend.queue)
    assert [i for _, i in keys(first)] == ids[:2]
    assert [i for _, i in keys(rest)] == ids[2:]


async def test_nothing_is_delivered_twice_after_ack(backend: Backend, monkeypatch):
    await backend.stream.append("acme", stored(5))
    await backend.queue.ack(await claim_all(backend.queue))
    reclaim_at_once(monkeypatch)  # even a claim that takes over every pending entry
    await asyncio.sleep(0.01)  # ... older than that
    assert await backend.queue.claim("alive", count=100, block_ms=0) == []
    assert await backend.queue.claim("another", count=100, block_ms=50) == []


async def test_two_consumers_never_hold_the_same_event(backend: Backend):
    ids = await backend.stream.append("acme", stored(10))
    first = await backend.queue.claim("first", count=4, block_ms=0)
    second = await claim_all(backend.queue, "second")
    assert not set(keys(first)) & set(keys(second))
    assert sorted(i for _, i in keys(first + second)) == ids


def reclaim_at_once(monkeypatch) -> None:
    """A claim not acknowledged within a millisecond counts as its consumer's death."""
    monkeypatch.setattr("events.broker.memory.ARCHIVE_RECLAIM_SECS", 0.001)
    monkeypatch.setattr("events.broker.redis_archive.ARCHIVE_RECLAIM_MSECS", 1)


async def test_a_dead_consumers_claimed_entries_are_reclaimed(backend: Backend, monkeypatch):
    ids = await backend.stream.append("acme", stored(3))
    assert len(await claim_all(backend.queue, "dead")) == 3  # then it died, before its ack
    reclaim_at_once(monkeypatch)
    taken: list[ArchiveItem] = []

    async def taken_over() -> bool:
        taken.extend(await backend.queue.claim("alive", count=100, block_ms=10))
        return len(taken) >= 3

    await eventually(taken_over)
    assert [i for _, i in keys(taken)] == ids
    await backend.queue.ack(taken)
    assert await backend.queue.backlog() == 0


async def test_the_backlog_counts_what_is_not_yet_archived(backend: Backend):
    assert await backend.queue.backlog() == 0
    await backend.stream.append("acme", stored(4))
    await backend.stream.append("other", stored(2))
    assert await backend.queue.backlog() == 6
    claimed = await backend.queue.claim("alive", count=3, block_ms=0)
    assert await backend.queue.backlog() == 6  # claimed is not stored yet
    await backend.queue.ack(claimed)
    assert await backend.queue.backlog() == 6 - len(claimed)
    await archive_everything(backend.queue)
    assert await backend.queue.backlog() == 0


async def test_a_blocking_claim_wakes_on_append(backend: Backend):
    await backend.stream.append("acme", stored(1))
    await archive_everything(backend.queue)
    claiming = asyncio.create_task(backend.queue.claim("alive", count=100, block_ms=WAIT_MSECS))
    assert await still_waiting(claiming)
    appended = await backend.stream.append("acme", stored(2))
    assert [i for _, i in keys(await asyncio.wait_for(claiming, 10))] == appended


async def test_a_claim_with_nothing_to_archive_ends_empty_at_its_timeout(backend: Backend):
    assert await backend.queue.claim("alive", count=100, block_ms=50) == []


async def test_it_answers_a_ping(backend: Backend):
    await backend.queue.ping()
