"""Safe by default: production mode unless asked, and never a secret from the repository."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import jwt
import pytest

from tests.servers import ROOT

# The development secret that was committed to the repository, hence public.
OLD_PUBLIC_SECRET = "insecure-development-secret-do-not-use-in-production"
SECRETS = {"DJANGO_SECRET_KEY": "k" * 50, "JWT_SECRET": "j" * 40}


def manage(tmp_path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run manage.py as an operator would: only the given settings, nothing of the tests'."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DJANGO_", "EVENTS_"))}
    return subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**keep, "EVENTS_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRINT_SETTINGS = "from django.conf import settings; print(settings.DEBUG, settings.JWT_SECRET)"
PRINT = ("shell", "--no-imports", "-c", PRINT_SETTINGS)


def test_it_runs_in_production_mode_when_django_debug_is_unset(tmp_path):
    started = manage(tmp_path, SECRETS, *PRINT)
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["False", SECRETS["JWT_SECRET"]]


def test_it_refuses_to_start_without_secrets_when_django_debug_is_unset(tmp_path):
    checked = manage(tmp_path, {}, "check", "--deploy")
    assert checked.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in checked.stderr
    assert "DJANGO_DEBUG=true" in checked.stderr


def test_it_refuses_to_start_without_a_token_secret_when_django_debug_is_unset(tmp_path):
    checked = manage(tmp_path, {"DJANGO_SECRET_KEY": "k" * 50}, "check", "--deploy")
    assert checked.returncode != 0
    assert "JWT_SECRET (HS256), JWT_PUBLIC_KEYS_FILE or JWT_JWKS_FILE" in checked.stderr


@pytest.mark.parametrize("name", ["DJANGO_SECRET_KEY", "JWT_SECRET"])
@pytest.mark.parametrize("debug", ["true", "false"])
def test_it_refuses_the_old_public_development_secret(tmp_path, name, debug):
    env = {**SECRETS, "DJANGO_DEBUG": debug, name: OLD_PUBLIC_SECRET}
    started = manage(tmp_path, env, "check")
    assert started.returncode != 0
    assert f"{name} is the old development secret from the repository" in started.stderr


def test_development_mode_makes_this_machines_own_secret_kept_private(tmp_path):
    first = manage(tmp_path, {"DJANGO_DEBUG": "true"}, *PRINT)
    again = manage(tmp_path, {"DJANGO_DEBUG": "true"}, *PRINT)
    assert first.returncode == 0, first.stderr
    debug, secret = first.stdout.split()
    assert debug == "True"
    assert len(secret) >= 32
    assert secret != OLD_PUBLIC_SECRET
    assert again.stdout.split() == [debug, secret]
    folder = tmp_path / "dev-secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for kept in folder.iterdir():
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert (folder / "jwt-secret").read_text() == secret


def test_a_token_signed_with_the_old_public_secret_is_refused(client, workspace):
    forged = jwt.encode(
        {"sub": "mallory", "exp": 2**31, "workspaces": {"acme": "owner"}},
        OLD_PUBLIC_SECRET,
        algorithm="HS256",
    )
    answer = client.get(
        "/v2/workspaces/acme/events/poll?timeout=0", HTTP_AUTHORIZATION=f"Bearer {forged}"
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "NotAuthenticated"
