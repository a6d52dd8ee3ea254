"""The realtime protocol's page (``/v2/protocol``) as a person sees it, offline.

A real browser on a production-mode server (tests/browser.py): the page lists the
channels, their messages and the close codes of the AsyncAPI document, styled from this
service's own static files, with nothing wrong in the console; its screenshot is saved
in docs/screenshots/protocol.png.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


async def test_the_protocol_page_lists_the_document(visitor) -> None:
    page = await visitor.visit("/v2/protocol", "protocol", ready="#close-codes")
    assert "realtime" in await page.inner_text("h1")
    assert await page.locator("section h3").count() == 2
    assert await page.locator("#message-emit").count() == 1
    assert await page.locator("#message-streamError").count() == 1
    codes = await page.locator("table td:first-child").all_inner_texts()
    assert {"4400", "4401", "4008", "4410", "1001"} <= set(codes)
    assert await visitor.style("table", "border-collapse") == "collapse"
    assert visitor.problems == []
