"""API keys and the operator's tools: the commands, the admin, the audit trail."""

from __future__ import annotations

import io
import re
import time

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone

from events.broker import get_live_stream
from kernel.ids import ZERO_ID
from workspaces.models import ApiKey, Workspace, hash_key
from workspaces.tokens import verify_token

pytestmark = pytest.mark.django_db(transaction=True)
KEY_PATTERN = re.compile(r"evk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def run(command: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue().strip()


def stored_events(workspace_id: str) -> list[dict]:
    async def read() -> list[dict]:
        return (await get_live_stream().read_after(workspace_id, ZERO_ID, count=1000)).events

    return async_to_sync(read)()


def emit(key: str, workspace_id: str = "acme") -> int:
    response = Client().post(
        f"/v2/workspaces/{workspace_id}/events",
        {"events": [{"type": "t"}]},
        content_type="application/json",
        headers={"X-Api-Key": key},
    )
    return response.status_code


# --- Keys ---------------------------------------------------------------------


def test_it_stores_only_the_hash_of_a_key(broker, key):
    stored = ApiKey.objects.get()
    assert stored.hashed_key == hash_key(key)
    assert key not in str(list(ApiKey.objects.values()))


def test_a_revoked_key_authenticates_nobody(broker, key):
    from workspaces.keys import revoke_api_key

    assert emit(key) == 201
    assert revoke_api_key(ApiKey.objects.get())
    assert emit(key) == 401


@override_settings(EVENTS_AUTH_CACHE_SECS=1)
def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(broker, key):
    assert emit(key) == 201
    # Another process revokes it: a plain UPDATE, nothing in this process hears of it.
    ApiKey.objects.update(revoked_at=timezone.now())
    time.sleep(1.1)
    assert emit(key) == 401


@override_settings(EVENTS_AUTH_CACHE_SECS=60)
def test_a_key_changed_in_this_process_is_not_served_from_the_cache(broker, workspace, key):
    assert emit(key) == 201
    stored = ApiKey.objects.get()
    stored.scopes = "consume"
    stored.save()  # the admin's change form does this
    assert emit(key) == 403


def test_a_key_of_another_workspace_is_refused_with_403(broker, workspace, make_key):
    other = make_key("beta", "emit")
    assert emit(other, "acme") == 403
    assert emit(other, "beta") == 201


def test_a_malformed_or_unknown_key_is_401(broker, workspace, key):
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for bad in ("nonsense", "evk_000000000000_x", tampered):
        assert emit(bad) == 401


def test_it_records_when_a_key_was_last_used(broker, key):
    assert ApiKey.objects.get().last_used_at is None
    emit(key)
    assert ApiKey.objects.get().last_used_at is not None


# --- createapikey ---------------------------------------------------------------


def test_createapikey_prints_a_new_key_once_and_creates_the_workspace(broker, transactional_db):
    out, err = run("createapikey", "newco", "--scopes", "emit,search", "--name", "billing")
    assert KEY_PATTERN.fullmatch(out)
    assert "billing" in err
    assert out not in err
    key = ApiKey.objects.get(workspace__slug="newco")
    assert (key.name, key.scopes) == ("billing", "emit,search")
    assert emit(out, "newco") == 201


def test_createapikey_refuses_unknown_scopes_and_bad_workspace_ids(transactional_db):
    with pytest.raises(CommandError, match="scopes"):
        run("createapikey", "acme", "--scopes", "emit,admin")
    with pytest.raises(CommandError, match="invalid workspace id"):
        run("createapikey", "not a/slug")
    assert not ApiKey.objects.exists()


def test_createapikey_refuses_a_name_longer_than_a_key_name_can_be(transactional_db):
    # SQLite would store it whole, PostgreSQL refuse it with a DataError: both say why now.
    with pytest.raises(CommandError, match="at most 100 characters"):
        run("createapikey", "acme", "--name", "n" * 101)
    assert not ApiKey.objects.exists()
    assert not Workspace.objects.filter(slug="acme").exists()
    run("createapikey", "acme", "--name", "n" * 100)
    assert ApiKey.objects.get().name == "n" * 100


def test_createapikey_writes_apikeys_created_to_the_audit_trail(broker, transactional_db):
    run("createapikey", "acme", "--name", "billing")
    [event] = [e for e in stored_events("acme") if e["type"] == "apikeys.created"]
    assert event["payload"]["name"] == "billing"
    assert event["payload"]["scopes"] == ["consume", "emit", "search"]
    assert event["source"]["userId"].startswith("cli:")
    assert event["source"]["correlationId"]
    assert not KEY_PATTERN.search(str(event))


# --- minttoken --------------------------------------------------------------------


def test_minttoken_prints_a_token_granting_the_role(broker, transactional_db):
    token, err = run(
        "minttoken", "u-ann", "--workspace", "acme", "--role", "editor", "--session", "s-1"
    )
    claims = verify_token(token)
    assert (claims.user_id, claims.session_id, claims.role_in("acme")) == ("u-ann", "s-1", "editor")
    assert "editor in 'acme'" in err
    assert Workspace.objects.filter(slug="acme").exists()
    response = Client().post(
        "/v2/workspaces/acme/events",
        {"events": [{"type": "t"}]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    assert response.json()["events"][0]["source"]["userId"] == "u-ann"


def test_minttoken_defaults_to_viewer_and_to_one_hour(transactional_db):
    token, _ = run("minttoken", "u-ann", "--workspace", "acme")
    assert verify_token(token).role_in("acme") == "viewer"
    import jwt

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600


def test_minttoken_refuses_what_it_cannot_do(transactional_db):
    with pytest.raises(CommandError, match="--role needs --workspace"):
        run("minttoken", "u-ann", "--role", "owner")
    with pytest.raises(CommandError, match="not start with"):
        run("minttoken", "apikey:billing")
    with override_settings(JWT_SECRET=""), pytest.raises(CommandError, match="JWT_SECRET"):
        run("minttoken", "u-ann")


# --- The admin ----------------------------------------------------------------------


@pytest.fixture
def admin_client(transactional_db: None) -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def add_workspace(client: Client, slug: str, *members: tuple[str, str]) -> None:
    data = {
        "slug": slug,
        "name": slug.title(),
        "api_keys-TOTAL_FORMS": 0,
        "api_keys-INITIAL_FORMS": 0,
    }
    data |= {"members-TOTAL_FORMS": len(members), "members-INITIAL_FORMS": 0}
    for n, (user_id, role) in enumerate(members):
        data |= {f"members-{n}-user_id": user_id, f"members-{n}-role": role}
    response = client.post("/admin/workspaces/workspace/add/", data)
    errors = re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    assert response.status_code == 302, errors


def add_key(client: Client, slug: str, name: str, scopes: list[str]) -> tuple[str, str]:
    """Add a key in the admin; return the secret shown and the correlation id."""
    workspace = Workspace.objects.get(slug=slug)
    response = client.post(
        "/admin/workspaces/apikey/add/", {"workspace": workspace.pk, "name": name, "scopes": scopes}
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    assert "no-store" in response["Cache-Control"]
    [secret] = KEY_PATTERN.findall(response.content.decode())
    return secret, response["X-Correlation-Id"]


def test_the_admin_creates_a_workspace_with_members(admin_client, broker, make_token):
    add_workspace(admin_client, "beta", ("u-ann", "editor"), ("u-bob", "viewer"))
    roles = dict(Workspace.objects.get(slug="beta").members.values_list("user_id", "role"))
    assert roles == {"u-ann": "editor", "u-bob": "viewer"}
    for user, expected in (("u-ann", 201), ("u-bob", 403)):
        token = make_token(user, role=None, workspace_id="beta")
        response = Client().post(
            "/v2/workspaces/beta/events",
            {"events": [{"type": "t"}]},
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == expected


def test_the_admin_shows_a_new_key_once(admin_client, broker):
    add_workspace(admin_client, "beta")
    secret, _ = add_key(admin_client, "beta", "billing", ["emit"])
    key = ApiKey.objects.get(name="billing")
    assert key.hashed_key == hash_key(secret)
    assert key.scopes == "emit"
    assert emit(secret, "beta") == 201
    for page in (f"/admin/workspaces/apikey/{key.pk}/change/", "/admin/workspaces/apikey/"):
        shown = admin_client.get(page)
        assert shown.status_code == 200
        assert secret not in shown.content.decode()


def test_the_admin_revokes_keys_with_an_action(admin_client, broker):
    add_workspace(admin_client, "beta")
    secret, _ = add_key(admin_client, "beta", "billing", ["emit"])
    key = ApiKey.objects.get(name="billing")
    response = admin_client.post(
        "/admin/workspaces/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
    )
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert emit(secret, "beta") == 401


def test_the_admin_cannot_unrevoke_a_key_or_move_it(admin_client, broker):
    from workspaces.keys import revoke_api_key

    add_workspace(admin_client, "beta")
    add_workspace(admin_client, "gamma")
    add_key(admin_client, "beta", "billing", ["emit"])
    key = ApiKey.objects.get(name="billing")
    revoke_api_key(key)
    gamma = Workspace.objects.get(slug="gamma")
    response = admin_client.post(
        f"/admin/workspaces/apikey/{key.pk}/change/",
        {"workspace": gamma.pk, "name": "renamed", "scopes": ["emit"], "revoked_at": ""},
    )
    assert response.status_code == 302
    changed = ApiKey.objects.get(pk=key.pk)
    assert changed.name == "renamed"
    assert changed.workspace.slug == "beta"
    assert changed.revoked_at == key.revoked_at


def test_the_admin_audits_key_creation_and_revocation(admin_client, broker):
    add_workspace(admin_client, "beta")
    _, correlation_id = add_key(admin_client, "beta", "billing", ["emit", "consume"])
    key = ApiKey.objects.get(name="billing")
    response = admin_client.post(
        "/admin/workspaces/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
        headers={"X-Correlation-Id": "revoke-123"},
    )
    assert response.status_code == 302
    audit = {e["type"]: e for e in stored_events("beta") if e["type"].startswith("apikeys.")}
    created, revoked = audit["apikeys.created"], audit["apikeys.revoked"]
    assert created["payload"] == {
        "name": "billing",
        "prefix": key.prefix,
        "scopes": ["consume", "emit"],
    }
    assert created["source"]["userId"] == revoked["source"]["userId"] == "root"
    assert created["source"]["correlationId"] == correlation_id
    assert revoked["source"]["correlationId"] == "revoke-123"
