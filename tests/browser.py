"""A real browser on a real server: Debian's chromium driven by Playwright for Python.

``scripts/bootstrap browser`` installs the chromium package; nothing here downloads a
browser build (Playwright's own browsers are never installed). A test that needs the
browser is skipped on a machine without it, and fails in CI (``CI`` set), where it must run.

The async API, since pytest-asyncio runs the suite's fixtures in event loops that
Playwright's sync API would collide with; a test gets its own browser.

Each page a test visits is saved as a screenshot in ``docs/screenshots/`` (committed, for
the README and the docs), and everything the page complains about is kept: console
errors, uncaught exceptions, Content-Security-Policy violations and subresources that
did not load.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page, Response

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("EVENTS_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}

# Reported through the console, so that a violation is a problem like any error.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


def unavailable() -> str | None:
    """Why the browser tests cannot run on this machine, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (scripts/bootstrap python)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no browser at {CHROMIUM} (scripts/bootstrap browser installs Debian's chromium)"
    return None


def require_browser() -> None:
    """Skip the test when the browser is missing, except in CI, where that is a failure."""
    reason = unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason}: the browser tests must run in CI", pytrace=False)
    pytest.skip(reason)


@asynccontextmanager
async def launched() -> AsyncIterator[Browser]:
    """Headless chromium, for as long as the context lasts."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Visitor:
    """One browser tab on one server: it screenshots each page it visits, keeps its problems."""

    page: Page
    base: str
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        self.page.on("response", self._response)
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status}: {response.url}")

    async def visit(self, path: str, shot: str, ready: str = "body") -> Page:
        """Open ``path``, wait for the ``ready`` selector, save ``docs/screenshots/<shot>.png``."""
        response = await self.page.goto(self.base + path, wait_until="load")
        assert response is not None, path
        assert response.status == 200, (path, response.status)
        await self.page.wait_for_selector(ready, state="visible")
        await self.page.wait_for_load_state("networkidle")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=SCREENSHOTS / f"{shot}.png", full_page=True)
        return self.page

    async def style(self, selector: str, prop: str) -> str:
        """The computed value of the CSS property ``prop`` on the first ``selector``."""
        return await self.page.eval_on_selector(
            selector, "(el, prop) => getComputedStyle(el).getPropertyValue(prop)", prop
        )


@asynccontextmanager
async def visitor(browser: Browser, base: str) -> AsyncIterator[Visitor]:
    """A fresh browser context (no cookies, a 1280x800 viewport) on the server at ``base``."""
    context = await browser.new_context(viewport=VIEWPORT, color_scheme="light")
    try:
        page = await context.new_page()
        await page.add_init_script(REPORT_CSP_VIOLATIONS)
        yield Visitor(page, base)
    finally:
        await context.close()
