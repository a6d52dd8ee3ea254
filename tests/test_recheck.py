"""An open WebSocket follows its credentials: revoked, expired, removed, lowered."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from tests.helpers import connect, next_frames, ws_client
from workspaces.keys import create_api_key, revoke_api_key
from workspaces.models import Membership, Workspace
from workspaces.tokens import mint_token

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("broker"),
]
RECHECK_SECS = 0.2


@pytest.fixture(autouse=True)
def _often():
    with override_settings(EVENTS_WS_RECHECK_SECS=RECHECK_SECS, JWT_LEEWAY_SECS=0):
        yield


async def closed_with(client, within: float = 5) -> int:
    """The close code the server sends (other frames are skipped)."""
    async with asyncio.timeout(within):
        while True:
            output = await client.receive_output(timeout=within)
            if output["type"] == "websocket.close":
                return output["code"]


async def connect_with_token(token: str):
    client = ws_client(query=f"token={token}")
    connected, code = await client.connect(timeout=5)
    assert connected, code
    return client


async def test_a_revoked_key_loses_its_open_connection_with_4401(workspace):
    key, secret = await sync_to_async(create_api_key)("acme", ["consume", "emit"])
    client = await connect(secret)
    await asyncio.sleep(RECHECK_SECS * 2)
    await client.send_json_to({"op": "ping"})
    assert await next_frames(client, 1, op="pong")  # still good while the key is
    await sync_to_async(revoke_api_key)(key)
    assert await closed_with(client) == 4401


async def test_an_expired_token_loses_its_open_connection_with_4401(workspace):
    token = mint_token("u-1", roles={"acme": "viewer"}, expires_in_secs=1)
    client = await connect_with_token(token)
    assert await closed_with(client, within=3) == 4401


async def test_a_member_removed_from_the_workspace_is_disconnected_with_4403(make_member):
    await sync_to_async(make_member)("u-2", "editor")
    client = await connect_with_token(mint_token("u-2"))
    await sync_to_async(Membership.objects.filter(user_id="u-2").delete)()
    assert await closed_with(client) == 4403


async def test_a_lowered_role_applies_to_the_next_emit_of_an_open_connection(make_member):
    await sync_to_async(make_member)("u-3", "editor")
    client = await connect_with_token(mint_token("u-3"))
    await client.send_json_to({"op": "emit", "ref": 1, "event": {"type": "said"}})
    assert (await next_frames(client, 1, op="ack"))[0]["ref"] == 1
    await sync_to_async(Membership.objects.filter(user_id="u-3").update)(role="viewer")
    await asyncio.sleep(RECHECK_SECS * 2)
    await client.send_json_to({"op": "emit", "ref": 2, "event": {"type": "said"}})
    [error] = await next_frames(client, 1, op="error")
    assert (error["ref"], error["error"]) == (2, "PermissionDenied")
    await client.disconnect()


async def test_a_deleted_workspace_closes_its_connections_with_4404(workspace):
    client = await connect_with_token(mint_token("u-4", roles={"acme": "viewer"}))
    await sync_to_async(Workspace.objects.filter(slug="acme").delete)()
    assert await closed_with(client) == 4404
