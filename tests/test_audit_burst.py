"""Audit events survive a burst: every one of many sockets closing at once is recorded.

Issue 11 item 13: when 10,000 WebSockets of one process closed at once, most
``events.unsubscribed`` events were lost, one Redis publish (and connection) per
disconnect. Here the same burst, scaled down: a Redis of the test's own that takes at
most ``MAX_CLIENTS`` connections, and more sockets than that closing together, on a
real uvicorn process. Every disconnect must reach the workspace's stream.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import redis

from events.broker.redis import stream_key
from tests.helpers import open_raw
from tests.redis_server import redis_server
from tests.servers import deployment

pytestmark = pytest.mark.redis

MAX_CLIENTS = 40
SOCKETS = 200
DEADLINE_SECS = 60


def audit_count(client: redis.Redis, event_type: str) -> int:
    """How many events of this type the workspace's stream holds."""
    entries = client.xrange(stream_key("acme"))
    return sum(orjson.loads(fields[b"event"])["type"] == event_type for _, fields in entries)


def wait_for_count(client: redis.Redis, event_type: str, expected: int) -> int:
    """The count once it reaches ``expected`` or the deadline passes (then the count seen)."""
    deadline = time.monotonic() + DEADLINE_SECS
    count = audit_count(client, event_type)
    while count < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        count = audit_count(client, event_type)
    return count


async def test_every_socket_of_a_mass_disconnect_is_audited():
    with (
        redis_server(persistent=False, options=("--maxclients", str(MAX_CLIENTS))) as own,
        deployment(1, server="uvicorn", REDIS_URL=own.url(0)) as running,
    ):
        client = redis.Redis.from_url(own.url(0))
        port = running.ports[0]
        sockets = [await open_raw(port, running.key) for _ in range(SOCKETS)]
        assert wait_for_count(client, "events.subscribed", SOCKETS) == SOCKETS
        for _, writer in sockets:
            writer.transport.abort()  # all at once: no close handshake, one loop turn
        await asyncio.sleep(0)
        assert wait_for_count(client, "events.unsubscribed", SOCKETS) == SOCKETS
        client.close()


async def test_an_event_the_broker_refuses_for_good_does_not_hold_back_the_others(redis_broker):
    from events.broker import get_live_stream
    from events.metrics import OWN_DROPPED
    from events.realtime import outbox
    from events.realtime.publishing import record_action
    from kernel.context import RequestContext
    from kernel.ids import ZERO_ID

    redis.Redis.from_url(redis_broker).set(stream_key("broken"), "not a stream")  # WRONGTYPE
    dropped = OWN_DROPPED._value.get()
    context = RequestContext(correlation_id="c-1", transport="http")
    await record_action("broken", "events.searched", {}, caller=None, context=context)
    await record_action("acme", "events.searched", {}, caller=None, context=context)
    async with asyncio.timeout(10):
        await outbox.flush()
    page = await get_live_stream().read_after("acme", ZERO_ID, count=10)
    assert [event["type"] for event in page.events] == ["events.searched"]
    assert OWN_DROPPED._value.get() == dropped + 1
