"""Django sessions (the admin, the browsable docs) as credentials, on HTTP and WebSocket.

A superuser is an owner of every workspace; any other Django user acts with
the role of the ``Membership`` whose user id is their username.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.test import AsyncClient

from tests.helpers import ws_client

pytestmark = pytest.mark.django_db(transaction=True)
POLL = "/v2/workspaces/acme/events/poll?timeout=0"
EMIT = "/v2/workspaces/acme/events"
BODY = json.dumps({"events": [{"type": "t"}]})


@pytest.fixture
def users(workspace, make_member) -> dict[str, User]:
    make_member("ann", "viewer")
    return {
        "root": User.objects.create_superuser("root", "root@example.com", "pw"),
        "ann": User.objects.create_user("ann", is_staff=True),
        "zed": User.objects.create_user("zed", is_staff=True),
    }


async def logged_in(user: User, *, enforce_csrf: bool = False) -> AsyncClient:
    client = AsyncClient(enforce_csrf_checks=enforce_csrf)
    await client.aforce_login(user)
    return client


async def test_a_superuser_session_acts_as_an_owner(broker, users):
    client = await logged_in(users["root"])
    assert (await client.get(POLL)).status_code == 200
    response = await client.post(EMIT, BODY, content_type="application/json")
    assert response.status_code == 201
    assert response.json()["events"][0]["source"]["userId"] == "root"


async def test_a_staff_session_has_the_role_of_its_username(broker, users):
    ann = await logged_in(users["ann"])
    assert (await ann.get(POLL)).status_code == 200
    assert (await ann.post(EMIT, BODY, content_type="application/json")).status_code == 403
    zed = await logged_in(users["zed"])
    assert (await zed.get(POLL)).status_code == 403


async def test_a_session_write_needs_the_csrf_token(broker, users):
    client = await logged_in(users["root"], enforce_csrf=True)
    refused = await client.post(EMIT, BODY, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["message"]
    await client.get("/admin/")  # its logout form sets the csrftoken cookie
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    accepted = await client.post(
        EMIT, BODY, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 201


async def session_ws(user: User, origin: str | None) -> int | None:
    client = await logged_in(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [(b"cookie", cookie.encode()), (b"host", b"events.example")]
    if origin:
        headers.append((b"origin", origin.encode()))
    socket = ws_client(headers=headers)
    await socket.connect(timeout=5)
    if await socket.receive_nothing(timeout=0.3):
        await socket.disconnect()
        return None
    message = await socket.receive_output(timeout=10)
    if message["type"] == "websocket.close":
        return message["code"]
    await socket.disconnect()
    return None


async def test_a_session_opens_a_websocket_from_the_sites_own_pages(broker, users):
    assert await session_ws(users["root"], "https://events.example") is None
    assert await session_ws(users["root"], None) is None
    assert await session_ws(users["zed"], "https://events.example") == 4403


async def test_a_session_cookie_sent_by_another_site_is_refused(broker, users):
    assert await session_ws(users["root"], "https://evil.example") == 4403


async def test_an_inactive_user_has_no_session(broker, users):
    client = await logged_in(users["ann"])
    await sync_to_async(User.objects.filter(username="ann").update)(is_active=False)
    assert (await client.get(POLL)).status_code == 401


async def test_the_admin_logs_in_and_out_through_asgi_with_the_csrf_check(users):
    client = AsyncClient(enforce_csrf_checks=True)
    page = await client.get("/admin/login/")
    token = page.cookies["csrftoken"].value
    refused = await client.post("/admin/login/", {"username": "root", "password": "pw"})
    assert refused.status_code == 403  # no token: the CSRF check ran
    form = {"username": "root", "password": "pw", "csrfmiddlewaretoken": token}
    login = await client.post("/admin/login/?next=/admin/", form)
    assert (login.status_code, login["Location"]) == (302, "/admin/")
    assert (await client.get("/admin/")).status_code == 200  # the session was saved
    assert (await client.get(POLL)).status_code == 200
    token = client.cookies["csrftoken"].value
    await client.post("/admin/logout/", {"csrfmiddlewaretoken": token})
    assert (await client.get("/admin/")).status_code == 302
