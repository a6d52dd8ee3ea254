"""A production start without collected static files is refused, naming ``collectstatic``.

Without the manifest that ``collectstatic`` writes, every page that links a static file
(the landing page, the admin, Swagger UI) would answer 500 in production mode: the
service says so once, at start-up, and does not start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from tests.production import PRODUCTION
from tests.servers import ROOT, SERVERS, free_port

MANIFEST_STORAGE = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def _run(argv: list[str], tmp_path, static_root) -> subprocess.CompletedProcess:
    env = {**os.environ, **PRODUCTION, "EVENTS_VAR_DIR": str(tmp_path), "REDIS_URL": ""}
    env["EVENTS_STATIC_ROOT"] = str(static_root)
    return subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_a_production_server_without_collected_files_refuses_to_start(tmp_path, server) -> None:
    argv = [a.format(port=free_port()) for a in SERVERS[server]]
    started = _run([*argv, "eventsproject.asgi:application"], tmp_path, tmp_path / "static")
    assert started.returncode != 0
    assert "manage.py collectstatic" in started.stderr
    assert str(tmp_path / "static") in started.stderr
    assert "Traceback" not in started.stderr


def test_manage_check_deploy_says_it_too(tmp_path) -> None:
    checked = _run(["manage.py", "check", "--deploy"], tmp_path, tmp_path / "static")
    assert checked.returncode != 0
    assert "eventsproject.E001" in checked.stderr
    assert "manage.py collectstatic" in checked.stderr


def test_collected_files_pass_the_check(tmp_path, static_root) -> None:
    checked = _run(["manage.py", "check", "--deploy"], tmp_path, static_root)
    assert "eventsproject.E001" not in checked.stdout + checked.stderr


@pytest.mark.parametrize(("debug", "errors"), [(False, ["eventsproject.E001"]), (True, [])])
def test_only_production_mode_needs_the_manifest(tmp_path, debug, errors) -> None:
    with override_settings(DEBUG=debug, STATIC_ROOT=tmp_path, STORAGES=MANIFEST_STORAGE):
        found = run_checks(include_deployment_checks=True, tags=["staticfiles"])
    assert [message.id for message in found] == errors


def test_a_storage_without_a_manifest_needs_none(tmp_path) -> None:
    with override_settings(DEBUG=False, STATIC_ROOT=tmp_path):
        found = run_checks(include_deployment_checks=True, tags=["staticfiles"])
    assert found == []


def _collected_before(static_root: Path, tmp_path: Path, new_file: str) -> Path:
    """A copy of the collected files as an older version collected them: without ``new_file``."""
    copy = shutil.copytree(static_root, tmp_path / "static")
    manifest = json.loads((copy / "staticfiles.json").read_text())
    del manifest["paths"][new_file]
    (copy / "staticfiles.json").write_text(json.dumps(manifest))
    return copy


def test_files_collected_by_another_version_are_refused_too(tmp_path, static_root) -> None:
    stale = _collected_before(static_root, tmp_path, "eventsproject/landing.css")
    argv = [a.format(port=free_port()) for a in SERVERS["uvicorn"]]
    started = _run([*argv, "eventsproject.asgi:application"], tmp_path, stale)
    assert started.returncode != 0
    assert "eventsproject/landing.css" in started.stderr
    assert "manage.py collectstatic" in started.stderr
    assert "Traceback" not in started.stderr


def test_the_check_names_what_another_version_did_not_collect(tmp_path, static_root) -> None:
    stale = _collected_before(static_root, tmp_path, "eventsproject/icon.png")
    with override_settings(DEBUG=False, STATIC_ROOT=stale, STORAGES=MANIFEST_STORAGE):
        found = run_checks(include_deployment_checks=True, tags=["staticfiles"])
    assert [message.id for message in found] == ["eventsproject.E002"]
    assert "eventsproject/icon.png" in found[0].msg
