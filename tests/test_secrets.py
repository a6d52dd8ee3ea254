"""Keys and tokens stay secret: redaction helpers, and no credential in any log line."""

from __future__ import annotations

import logging
import time

import jwt
import pytest
from django.conf import settings
from django.test import AsyncClient

from kernel.redaction import (
    REDACTED,
    RedactSecretsFilter,
    redact_query,
    redact_text,
)
from tests.helpers import ws_client

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "evk_0123456789ab_" + "s" * 43
JWT = jwt.encode({"sub": "u-1", "exp": 1}, "x" * 32, algorithm="HS256")


def test_redact_query_hides_credentials_and_keeps_the_rest():
    query = f"types=orders.*&token={JWT}&apiKey={KEY}&lastEventId=1-2&API_KEY=x&access_token=y"
    assert redact_query(query) == (
        f"types=orders.*&token={REDACTED}&apiKey={REDACTED}&lastEventId=1-2"
        f"&API_KEY={REDACTED}&access_token={REDACTED}"
    )
    assert redact_query("") == ""
    assert redact_query("flag&text=a=b") == "flag&text=a=b"


def test_redact_text_masks_keys_and_tokens_anywhere():
    text = f"refused {KEY} and Bearer {JWT}."
    assert redact_text(text) == f"refused evk_0123456789ab_{REDACTED} and Bearer {REDACTED}."


def test_the_log_filter_rewrites_messages_holding_a_secret():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", (KEY,), None)
    assert RedactSecretsFilter().filter(record)
    assert KEY not in record.getMessage()


async def test_refused_credentials_never_reach_the_logs(broker, workspace, key, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    forged = jwt.encode({"sub": "u-1", "exp": int(time.time()) + 60}, "y" * 40, algorithm="HS256")
    revoked_like = key[:-3] + "abc"
    client = AsyncClient()
    await client.get(
        "/v2/workspaces/acme/events/poll?timeout=0", headers={"X-Api-Key": revoked_like}
    )
    await client.get(
        "/v2/workspaces/acme/events/poll?timeout=0", headers={"Authorization": f"Bearer {forged}"}
    )
    for query in (f"token={forged}", f"apiKey={revoked_like}", f"apiKey={key}"):
        socket = ws_client(query=query)
        await socket.connect(timeout=5)
        await socket.disconnect()
    logged = caplog.text + capsys.readouterr().out
    for secret in (forged, revoked_like, key, settings.JWT_SECRET):
        assert secret not in logged
