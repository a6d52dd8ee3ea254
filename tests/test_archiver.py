"""The archiver: every event the broker carries ends up in the history, exactly once."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
import pytest
import redis.asyncio as aioredis
from django.test import override_settings

from events.broker import get_archive_queue, get_live_stream, reset_broker
from events.filters import parse_filters
from events.metrics import ARCHIVE_BACKLOG, ARCHIVE_FAILURES
from history import get_history
from history.archiver import Archiver, start_in_process
from history.base import History, HistoryUnavailable, SearchQuery
from kernel.caller import Caller
from tests.conftest import REDIS_TEST_URL
from tests.helpers import DEADLINE_SECS, eventually
from tests.history_helpers import archive_all, emit, found_types

pytestmark = pytest.mark.django_db(transaction=True)
OWNER = Caller.for_user("acme", "olga", "owner")


@pytest.fixture(autouse=True)
def quick_reclaim(monkeypatch):
    """Claim a dead archiver's batch after 0.3 s instead of 30 s; find new streams at once."""
    monkeypatch.setattr("events.broker.memory.ARCHIVE_RECLAIM_SECS", 0.3)
    monkeypatch.setattr("events.broker.redis_archive.ARCHIVE_RECLAIM_MSECS", 300)
    monkeypatch.setattr("events.broker.redis_archive.DISCOVERY_SECS", 0.0)


@pytest.fixture(autouse=True)
async def close_history():
    yield
    await get_history().close()


async def drained() -> bool:
    """Whether the archiver has nothing left to do."""
    return await get_archive_queue().backlog() == 0


async def stored(event_type: str) -> list[dict]:
    """Every stored event of a type, oldest first (the history holds fewer than 500)."""
    await get_history().refresh()
    query = SearchQuery("acme", OWNER, parse_filters({"types": event_type}), limit=500, sort="asc")
    return (await get_history().search(query)).events


async def publish(count: int, event_type: str = "load", **extra) -> list[str]:
    events = [
        orjson.dumps({"type": event_type, "payload": {"n": n}, **extra}) for n in range(count)
    ]
    return await get_live_stream().append("acme", events)


async def archive_until(event_type: str, count: int, archiver: Archiver) -> list[dict]:
    """Step an archiver until ``count`` events of the type are stored (or the deadline)."""
    deadline = time.monotonic() + DEADLINE_SECS
    while len(found := await stored(event_type)) < count and time.monotonic() < deadline:
        await archiver.step()
    return found


class Wrapping(History):
    """A test history in front of a real one: everything but ``store`` goes through."""

    inner: History

    async def ping(self):
        await self.inner.ping()

    async def search(self, query):
        return await self.inner.search(query)

    async def delete_older_than(self, moment):
        return await self.inner.delete_older_than(moment)


class StopsMidBatch(Wrapping):
    """A history that stores the first half of a batch, then hangs until cancelled."""

    def __init__(self, inner: History) -> None:
        self.inner = inner
        self.stored_part = asyncio.Event()

    async def store(self, envelopes):
        await self.inner.store(envelopes[: len(envelopes) // 2])
        self.stored_part.set()
        await asyncio.Event().wait()


class DownThenUp(Wrapping):
    """A history that refuses the first ``failures`` writes."""

    error: type[Exception] = HistoryUnavailable

    def __init__(self, inner: History, failures: int) -> None:
        self.inner, self.failures = inner, failures

    async def store(self, envelopes):
        if self.failures:
            self.failures -= 1
            raise self.error("down for the test")
        await self.inner.store(envelopes)


class BrokenOnce(DownThenUp):
    """A history whose first write fails in a way nobody planned for."""

    error = RuntimeError


async def test_an_unexpected_failure_is_logged_reported_as_an_error_event_and_survived(
    broker, history, caplog
):
    ids = await publish(3)
    archiver = Archiver(get_archive_queue(), BrokenOnce(get_history(), failures=1), flush_msecs=50)
    with caplog.at_level(logging.ERROR, logger="events.failures"):
        task = asyncio.ensure_future(archiver.run())
        await eventually(lambda: _stored_ids_are(ids))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [e["id"] for e in await stored("load")] == ids
    failure = next(r for r in caplog.records if r.name == "events.failures")
    assert failure.exc_info
    assert failure.exc_info[0] is RuntimeError
    page = await get_live_stream().read_after("platform", "0000000000000000-0000000000", count=10)
    [error] = [e for e in page.events if e["type"] == "error"]
    assert error["payload"] == {"where": "archiver"}
    assert error["error"]["message"] == "RuntimeError"  # the class only: viewers read it
    assert error["source"]["correlationId"]


async def _stored_ids_are(ids: list[str]) -> bool:
    return [e["id"] for e in await stored("load")] == ids


async def test_it_stores_every_event_once_after_being_killed_mid_batch(broker, history):
    ids = await publish(40)
    dying = Archiver(
        get_archive_queue(), StopsMidBatch(get_history()), batch_size=40, flush_msecs=50
    )
    task = asyncio.create_task(dying.run())
    await asyncio.wait_for(dying.history.stored_part.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(await stored("load")) == 20
    found = await archive_until(
        "load", 40, Archiver(get_archive_queue(), get_history(), flush_msecs=50)
    )
    assert [e["id"] for e in found] == ids
    assert [e["payload"]["n"] for e in found] == list(range(40))


async def test_it_keeps_events_in_the_broker_while_the_history_is_down(broker, history, caplog):
    ids = await publish(10)
    failures = ARCHIVE_FAILURES._value.get()
    archiver = Archiver(get_archive_queue(), DownThenUp(get_history(), failures=3), flush_msecs=50)
    with caplog.at_level(logging.WARNING, logger="events.outages"):
        await archiver.step()
    assert ARCHIVE_FAILURES._value.get() == failures + 3
    assert "history unavailable in the archiver (10 events wait in the broker" in caplog.text
    assert ARCHIVE_BACKLOG._value.get() == 10
    assert [e["id"] for e in await stored("load")] == ids
    await archiver.step()
    assert await get_archive_queue().backlog() == 0


async def test_it_shares_the_work_between_archivers(redis_broker, history):
    ids = await publish(300)
    archivers = [
        Archiver(get_archive_queue(), get_history(), batch_size=25, flush_msecs=50) for _ in "ab"
    ]
    tasks = [asyncio.create_task(a.run()) for a in archivers]
    await eventually(drained)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert [e["id"] for e in await stored("load")] == ids


async def test_it_archives_events_another_service_wrote_to_redis(redis_broker, history, key):
    client = aioredis.Redis.from_url(REDIS_TEST_URL)
    event = {"type": "billing.invoiced", "payload": {"invoice": "INV-7", "note": "Paid late"}}
    await client.xadd("events:stream:acme", {"event": orjson.dumps(event)})
    await client.aclose()
    await archive_all()
    assert await found_types(key, types="billing.*", text="late") == ["billing.invoiced"]
    [found] = await stored("billing.invoiced")
    assert found["source"]["workspaceId"] == "acme"
    assert found["createdAt"].endswith("Z")


@pytest.mark.parametrize("history", ["elasticsearch"], indirect=True)
async def test_it_loses_nothing_when_elasticsearch_stops_for_ten_seconds(
    broker, history, noida, caplog
):
    if not noida.managed:
        pytest.skip("ELASTICSEARCH_TEST_URL is not a noida-db this session controls")
    archiver = Archiver(get_archive_queue(), get_history(), batch_size=50, flush_msecs=100)
    task = asyncio.create_task(archiver.run())
    sent: list[str] = []

    async def produce(secs: float) -> None:
        end = time.monotonic() + secs
        while time.monotonic() < end:
            sent.extend(await publish(5, "flow"))
            await asyncio.sleep(0.05)

    with caplog.at_level(logging.WARNING, logger="events.outages"):
        await produce(1)
        await asyncio.to_thread(noida.stop_elasticsearch)
        await produce(10)
        await asyncio.to_thread(noida.start_elasticsearch)
        await produce(1)
        await eventually(drained)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert "history unavailable" in caplog.text
    query = SearchQuery("acme", OWNER, parse_filters({"types": "flow"}), limit=500, sort="asc")
    found, page = [], None
    await get_history().refresh()
    while page is None or page.next_after_id:
        after = page.next_after_id if page else None
        page = await get_history().search(
            SearchQuery(
                query.workspace_id, OWNER, query.filters, limit=500, sort="asc", after_id=after
            )
        )
        found += [e["id"] for e in page.events]
    assert found == sent


async def test_it_runs_inside_the_service_process_when_configured(broker, history, key):
    with override_settings(ARCHIVE_IN_PROCESS=False):
        assert await start_in_process() == []
    with override_settings(ARCHIVE_IN_PROCESS=True, ARCHIVE_FLUSH_MSECS=50):
        [task] = await start_in_process()
    try:
        await emit(key, {"type": "in.process"})

        async def archived() -> bool:
            return bool(await stored("in.process"))

        await eventually(archived)
        assert [e["type"] for e in await stored("in.process")] == ["in.process"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_it_keeps_a_dead_archivers_batch_while_trimming_the_stream(redis_broker, history):
    with override_settings(EVENTS_BUFFER_SIZE=10):
        reset_broker()
        early = await publish(5, "early")
        assert len(await get_archive_queue().claim("dead", count=5, block_ms=10)) == 5
        await publish(300, "late")
        archiver = Archiver(get_archive_queue(), get_history(), batch_size=500, flush_msecs=50)
        await archive_until("late", 300, archiver)
        found = await archive_until("early", 5, archiver)
        assert [e["id"] for e in found] == early
        await archiver.step()
        assert await get_archive_queue().backlog() == 0
