"""The event stream in the test's own process (Django's async client, no server between).

The same engine as on a server, read chunk by chunk: the exact bytes of each message,
the bounded outbox of a client that does not read, credentials that stop holding, and
a stop of the process.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient, override_settings

from events.broker import get_live_stream, reset_broker
from events.realtime import lifecycle
from events.realtime.recheck import check_workspace_now
from tests.test_longpoll import emit
from workspaces.authcache import forget_all
from workspaces.keys import create_api_key, revoke_api_key

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v2/workspaces/acme/events/stream"
RETRY = b"retry: 2000\n\n"


async def open_stream(key: str, **params: str):
    """The stream's chunks, once its ``retry:`` came (it is subscribed by then)."""
    response = await AsyncClient().get(URL, params, headers={"X-Api-Key": key})
    assert response.status_code == 200
    chunks = aiter(response.streaming_content)
    assert await anext(chunks) == RETRY
    return chunks


def error_of(chunk: bytes) -> dict:
    head, _, data = chunk.partition(b"\ndata: ")
    assert head == b"event: error"
    return orjson.loads(data)


async def test_each_event_is_one_message_its_position_the_id(broker, key):
    chunks = await open_stream(key, types="tick")
    [_, event] = await emit(key, {"type": "other"}, {"type": "tick", "payload": {"n": 1}})
    chunk = await anext(chunks)
    epoch = (await get_live_stream().stream_state("acme")).epoch
    assert chunk == b"id: %s:%s\ndata: %s\n\n" % (
        epoch.encode(),
        event["id"].encode(),
        orjson.dumps(event),
    )
    await chunks.aclose()


async def test_a_client_that_does_not_read_is_cut_off_past_the_outbox(broker, key):
    with override_settings(EVENTS_SSE_OUTBOX_MAX=5):
        chunks = await open_stream(key, types="tick")
        await emit(key, *[{"type": "tick"}] * 10)
        chunk = await anext(chunks)
    assert error_of(chunk)["error"] == "SlowConsumer"
    with pytest.raises(StopAsyncIteration):
        await anext(chunks)


async def test_a_revoked_key_ends_the_stream_when_the_workspace_is_checked_again(broker, workspace):
    api_key, secret = await sync_to_async(create_api_key)("acme", ["consume", "emit"])
    chunks = await open_stream(secret, types="tick")
    await sync_to_async(revoke_api_key)(api_key)
    forget_all()
    assert check_workspace_now({"workspace": "acme"}) >= 1
    assert error_of(await anext(chunks))["error"] == "NotAuthenticated"


async def test_a_stop_ends_the_stream_and_a_stream_opened_during_it_ends_at_once(broker, key):
    chunks = await open_stream(key, types="tick")
    pending = asyncio.ensure_future(anext(chunks))
    lifecycle.close_connections()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)
    response = await AsyncClient().get(URL, {"types": "tick"}, headers={"X-Api-Key": key})
    assert [chunk async for chunk in response.streaming_content] == [RETRY]
    lifecycle._stopping.discard(asyncio.get_running_loop())


async def test_a_session_cookie_opens_the_stream_from_this_sites_own_pages_only(broker, workspace):
    user = await sync_to_async(User.objects.create_superuser)("root", "root@example.com", "pw")
    client = AsyncClient()
    await client.aforce_login(user)
    elsewhere = await client.get(URL, headers={"Origin": "https://elsewhere.example"})
    assert elsewhere.status_code == 403
    assert elsewhere.json()["error"] == "PermissionDenied"
    response = await client.get(URL, headers={"Origin": "http://testserver"})
    assert response.status_code == 200
    chunks = aiter(response.streaming_content)
    assert await anext(chunks) == RETRY
    await chunks.aclose()


async def test_a_position_older_than_the_live_buffer_ends_with_cursor_expired(broker, key):
    with override_settings(EVENTS_BUFFER_SIZE=50, ARCHIVE_MAX_BACKLOG=50):
        reset_broker()
        [first] = await emit(key, {"type": "old"})
        for _ in range(3):
            await emit(key, *[{"type": "tick"}] * 100)
        response = await AsyncClient().get(
            URL, {"lastEventId": first["id"]}, headers={"X-Api-Key": key}
        )
        chunks = [chunk async for chunk in response.streaming_content]
    assert chunks[0] == RETRY
    assert error_of(chunks[1])["error"] == "CursorExpired"
    assert len(chunks) == 2


async def test_a_stream_opened_while_redis_is_down_says_so_and_ends(own_redis, key):
    own_redis.stop()
    response = await AsyncClient().get(URL, {"types": "tick"}, headers={"X-Api-Key": key})
    assert response.status_code == 200
    chunks = [chunk async for chunk in response.streaming_content]
    assert chunks[0] == RETRY
    assert error_of(chunks[1]) == {
        "error": "ServiceUnavailable",
        "message": "A dependency is unavailable; try again",
    }
