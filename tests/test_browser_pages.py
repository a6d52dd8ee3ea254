"""The service's pages as a person sees them: a real browser on a production-mode server.

Headless Debian chromium (tests/browser.py) on one uvicorn process with
DJANGO_DEBUG=false and collected static files (tests/production.py). Each page must
come out styled, with nothing wrong in the browser's console; its screenshot is saved
in docs/screenshots/.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

ADMIN_BLUE = "rgb(65, 118, 144)"  # the admin's --primary/--secondary colour, from its CSS


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
