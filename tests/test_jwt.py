"""Bearer tokens: what the service accepts and refuses (contract section 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.test import AsyncClient, override_settings

from kernel.errors import NotAuthenticated
from tests.helpers import ws_client
from workspaces.tokens import mint_token, verify_token

pytestmark = pytest.mark.django_db(transaction=True)
OTHER_SECRET = "not-the-configured-secret-0123456789abcdef"


def claims(**extra: object) -> dict:
    now = int(time.time())
    return {"sub": "u-1", "iat": now, "exp": now + 600, **extra}


def hs256(secret: str | None = None, **extra: object) -> str:
    return jwt.encode(claims(**extra), secret or settings.JWT_SECRET, algorithm="HS256")


def refusal(token: str) -> str:
    with pytest.raises(NotAuthenticated) as refused:
        verify_token(token)
    return refused.value.message


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def pem_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> str:
    """A PEM file with an unrelated key first, then the signing key."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pems = [
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for k in (other, rsa_key)
    ]
    path = tmp_path / "keys.pem"
    path.write_bytes(b"".join(pems))
    return str(path)


@pytest.fixture
def jwks_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> str:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}))
    return str(path)


def test_it_accepts_a_token_signed_with_the_secret():
    verified = verify_token(hs256(sid="s-1", workspaces={"acme": "editor"}))
    assert verified.user_id == "u-1"
    assert verified.session_id == "s-1"
    assert verified.role_in("acme") == "editor"
    assert verified.role_in("other") is None


def test_it_refuses_a_forged_signature():
    assert refusal(hs256(OTHER_SECRET)) == "the token's signature is invalid"


def test_it_refuses_an_expired_token():
    assert refusal(hs256(exp=int(time.time()) - 300)) == "the token has expired"


def test_it_allows_the_configured_clock_leeway():
    with override_settings(JWT_LEEWAY_SECS=30):
        assert verify_token(hs256(exp=int(time.time()) - 5)).user_id == "u-1"


def test_it_refuses_a_token_not_yet_valid():
    assert "not valid yet" in refusal(hs256(nbf=int(time.time()) + 300))


def test_it_refuses_a_token_for_another_audience():
    with override_settings(JWT_AUDIENCE="events"):
        assert "aud" in refusal(hs256(aud="billing"))
        assert refusal(hs256()) == "the token lacks the 'aud' claim"
        assert verify_token(hs256(aud=["billing", "events"])).user_id == "u-1"


def test_it_refuses_a_token_from_another_issuer():
    with override_settings(JWT_ISSUER="https://id.example"):
        assert "iss" in refusal(hs256(iss="https://evil.example"))
        assert verify_token(hs256(iss="https://id.example")).user_id == "u-1"


def test_it_requires_exp_and_sub():
    now = int(time.time())
    no_exp = jwt.encode({"sub": "u-1"}, settings.JWT_SECRET, algorithm="HS256")
    no_sub = jwt.encode({"exp": now + 60}, settings.JWT_SECRET, algorithm="HS256")
    assert refusal(no_exp) == "the token lacks the 'exp' claim"
    assert refusal(no_sub) == "the token lacks the 'sub' claim"


def test_it_refuses_unsigned_and_malformed_tokens():
    unsigned = jwt.encode(claims(), None, algorithm="none")
    assert "not accepted" in refusal(unsigned)
    assert refusal("not-a-jwt") == "the token is malformed"


def test_it_refuses_user_ids_that_pose_as_api_keys():
    assert "reserved" in refusal(hs256(sub="apikey:billing"))


def test_it_refuses_a_role_that_does_not_exist():
    verified = verify_token(hs256(workspaces={"acme": "god"}))
    with pytest.raises(NotAuthenticated):
        verified.role_in("acme")
    assert "workspaces claim" in refusal(hs256(workspaces=["acme"]))


def test_it_verifies_rs256_with_pem_public_keys(rsa_key, pem_file):
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    with override_settings(JWT_PUBLIC_KEYS_FILE=pem_file):
        assert verify_token(token).user_id == "u-1"
    assert "not accepted" in refusal(token)


def test_it_verifies_rs256_with_a_jwks_and_kid(rsa_key, jwks_file):
    with override_settings(JWT_JWKS_FILE=jwks_file):
        good = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
        assert verify_token(good).user_id == "u-1"
        unknown_kid = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "k9"})
        assert "not accepted" in refusal(unknown_kid)
        forged = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        assert "signature" in refusal(jwt.encode(claims(), forged, algorithm="RS256"))


def test_it_refuses_an_hs256_token_signed_with_the_public_key(pem_file):
    # The classic algorithm confusion: the public key used as an HMAC secret.
    public_pem = Path(pem_file).read_text()
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = jwt.utils.base64url_encode(json.dumps(claims()).encode())
    import hashlib
    import hmac

    signing_input = header + b"." + body
    signature = hmac.new(public_pem.encode(), signing_input, hashlib.sha256).digest()
    token = (signing_input + b"." + jwt.utils.base64url_encode(signature)).decode()
    with override_settings(JWT_PUBLIC_KEYS_FILE=pem_file, JWT_SECRET=""):
        assert "not accepted" in refusal(token)


def test_minted_tokens_carry_the_configured_audience_and_issuer():
    with override_settings(JWT_AUDIENCE="events", JWT_ISSUER="https://id.example"):
        token = mint_token("u-2", roles={"acme": "owner"}, session_id="s-2")
        verified = verify_token(token)
    assert (verified.user_id, verified.session_id, verified.role_in("acme")) == (
        "u-2",
        "s-2",
        "owner",
    )


async def test_http_answers_401_for_an_expired_token(workspace):
    token = hs256(exp=int(time.time()) - 300, workspaces={"acme": "owner"})
    response = await AsyncClient().post(
        "/v2/workspaces/acme/events",
        {"events": [{"type": "t"}]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert response.json() == {"error": "NotAuthenticated", "message": "the token has expired"}


async def test_http_answers_401_for_a_non_bearer_authorization(workspace):
    response = await AsyncClient().get(
        "/v2/workspaces/acme/events/poll?timeout=0", headers={"Authorization": "Basic dTpw"}
    )
    assert response.status_code == 401


async def test_http_refuses_tokens_in_the_query_string(workspace):
    token = hs256(workspaces={"acme": "owner"})
    response = await AsyncClient().get(f"/v2/workspaces/acme/events/poll?timeout=0&token={token}")
    assert response.status_code == 401
    assert "WebSocket and the event stream only" in response.json()["message"]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: hs256(OTHER_SECRET, workspaces={"acme": "owner"}), id="forged"),
        pytest.param(
            lambda: hs256(exp=int(time.time()) - 300, workspaces={"acme": "owner"}), id="expired"
        ),
        pytest.param(
            lambda: hs256(nbf=int(time.time()) + 300, workspaces={"acme": "owner"}),
            id="not-yet-valid",
        ),
    ],
)
async def test_websocket_closes_4401_for_a_bad_token(broker, workspace, token):
    client = ws_client(query=f"token={token()}")
    await client.connect(timeout=10)
    closed = await client.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": 4401, "reason": closed["reason"]}


async def test_websocket_closes_4401_for_a_wrong_audience(broker, workspace):
    with override_settings(JWT_AUDIENCE="events"):
        client = ws_client(query=f"token={hs256(aud='billing', workspaces={'acme': 'owner'})}")
        await client.connect(timeout=10)
        closed = await client.receive_output(timeout=10)
    assert closed["code"] == 4401


def _start(env: dict[str, str]) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**keep, "DJANGO_SETTINGS_MODULE": "eventsproject.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_refuses_to_start_in_production_without_a_jwt_secret_or_keys():
    started = _start({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "s" * 50})
    assert started.returncode != 0
    assert "JWT_SECRET (HS256), JWT_PUBLIC_KEYS_FILE or JWT_JWKS_FILE" in started.stderr


def test_it_refuses_to_start_in_production_with_a_short_jwt_secret():
    started = _start({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "s" * 50, "JWT_SECRET": "short"})
    assert started.returncode != 0
    assert "at least 32 characters" in started.stderr


def test_it_starts_in_production_with_public_keys_only(pem_file):
    env = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "s" * 50, "JWT_PUBLIC_KEYS_FILE": pem_file}
    assert _start(env).returncode == 0


def test_it_refuses_to_start_with_an_unreadable_key_file(tmp_path):
    started = _start({"DJANGO_DEBUG": "true", "JWT_JWKS_FILE": str(tmp_path / "missing.json")})
    assert started.returncode != 0
    assert "JWT_JWKS_FILE: cannot read" in started.stderr
