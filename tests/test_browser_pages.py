"""The service's pages as a person sees them: a real browser on a production-mode server.

Headless Debian chromium (tests/browser.py) on one uvicorn process with
DJANGO_DEBUG=false and collected static files (tests/production.py). Each page must
come out styled, with nothing wrong in the browser's console; its screenshot is saved
in docs/screenshots/.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

ADMIN_BLUE = "rgb(65, 118, 144)"  # the admin's --primary/--secondary colour, from its CSS
LANDING_BANNER = "rgb(23, 52, 84)"  # --banner in eventsproject/static/eventsproject/landing.css


async def test_the_landing_page_is_styled(visitor) -> None:
    page = await visitor.visit("/", "landing", ready="h1")
    assert await page.inner_text("h1") == "Events service"
    assert await visitor.style(".banner", "background-color") == LANDING_BANNER
    assert await visitor.style(".features", "display") == "grid"
    sheet = await page.get_attribute("link[rel=stylesheet]", "href")
    assert re.fullmatch(r"/static/eventsproject/landing\.[0-9a-f]{12}\.css", sheet or ""), sheet
    assert visitor.problems == []


async def test_the_landing_pages_policy_refuses_an_inline_script(visitor) -> None:
    page = await visitor.visit("/", "landing", ready="h1")
    async with page.expect_console_message(lambda m: "CSP violation: script-src" in m.text):
        await page.evaluate(
            """() => { const s = document.createElement("script");
                       s.textContent = "window.injected = true"; document.body.append(s); }"""
        )
    assert await page.evaluate("window.injected") is None


async def test_the_admin_login_page_is_styled(visitor) -> None:
    await visitor.visit("/admin/login/", "admin-login", ready="#login-form")
    assert await visitor.style("#header", "background-color") == ADMIN_BLUE
    assert await visitor.style("#container", "display") == "flex"
    assert visitor.problems == []


async def test_swagger_ui_shows_the_api(visitor) -> None:
    page = await visitor.visit("/v2/docs", "api-docs", ready=".swagger-ui .info .title")
    assert "Events service" in await page.inner_text(".swagger-ui .info .title")
    assert await page.locator(".swagger-ui .opblock").count() > 0
    assert await visitor.style(".swagger-ui .info .title", "font-size") == "36px"
    assert visitor.problems == []


async def test_a_page_without_its_own_icon_gets_the_services(visitor) -> None:
    response = await visitor.page.goto(f"{visitor.base}/favicon.ico")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"] == "image/png"
