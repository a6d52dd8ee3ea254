"""Heap snapshots are private: 0600 files in a 0700 folder, with secret strings masked.

A snapshot names every string node by its text, so it would carry whatever
secrets the process holds: the settings' secrets, API keys and tokens that
requests brought, ``name=secret`` pairs. The test keeps such strings alive,
writes a real snapshot, and reads the file.
"""

from __future__ import annotations

import secrets
import stat

from django.conf import settings
from django.test import override_settings

from sysadmin.heapdump import write_dump

# Bytes are named by their type in a snapshot, never by their content: the test
# can keep the raw secrets it looks for without putting them in the heap as text.
RAW_KEY = secrets.token_hex(16).encode()
RAW_PASSWORD = secrets.token_hex(16).encode()
RAW_ADMIN = secrets.token_hex(24).encode()


def test_a_heap_snapshot_is_written_private_and_without_secrets(tmp_path):
    folder = tmp_path / "heapdumps"
    kept = [
        "evk_0123456789ab_" + RAW_KEY.decode(),
        "redis://user:" + RAW_PASSWORD.decode() + "@redis:6379/0",
        "a log line with password=" + RAW_PASSWORD.decode(),
    ]
    with override_settings(EVENTS_ADMIN_TOKEN="admin-" + RAW_ADMIN.decode()):
        dump = write_dump(folder)
        data = dump.path.read_bytes()
    assert kept  # alive while the snapshot was taken
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(dump.path.stat().st_mode) == 0o600
    assert b'"(Python heap)"' in data  # a real snapshot
    for raw in (RAW_KEY, RAW_PASSWORD, RAW_ADMIN):
        assert raw not in data
    assert settings.JWT_SECRET.encode() not in data
    assert settings.SECRET_KEY.encode() not in data
    assert b"evk_0123456789ab_[REDACTED]" in data
