"""Static files in production mode: the admin's and Swagger UI's files, served by the service.

A real uvicorn process with DJANGO_DEBUG=false (tests/production.py): what a browser
fetches after the page itself, compressed and under cache-busted names.
"""

from __future__ import annotations

import re

import httpx
from django.test import Client, override_settings

HASHED = re.compile(r"\.[0-9a-f]{12}\.(css|js)$")


def _assets(html: str, kind: str) -> list[str]:
    pattern = r'href="([^"]+\.css)"' if kind == "css" else r'src="([^"]+\.js)"'
    return re.findall(pattern, html)


def test_it_serves_the_admin_stylesheets_under_cache_busted_names(production) -> None:
    page = httpx.get(f"{production.http(0)}/admin/login/")
    assert page.status_code == 200
    sheets = _assets(page.text, "css")
    assert sheets, page.text[:500]
    for sheet in sheets:
        assert HASHED.search(sheet), sheet
        response = httpx.get(f"{production.http(0)}{sheet}")
        assert response.status_code == 200, sheet
        assert response.headers["content-type"].startswith("text/css")
        assert "immutable" in response.headers["cache-control"]


def test_it_serves_swagger_ui_compressed(production) -> None:
    page = httpx.get(f"{production.http(0)}/v2/docs")
    assert page.status_code == 200
    scripts = [s for s in _assets(page.text, "js") if "swagger-ui-bundle" in s]
    assert scripts, page.text[:500]
    response = httpx.get(f"{production.http(0)}{scripts[0]}", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "javascript" in response.headers["content-type"]


def test_it_answers_an_unknown_static_file_with_a_404(production) -> None:
    response = httpx.get(f"{production.http(0)}/static/admin/css/nothing-here.css")
    assert response.status_code == 404


def test_it_serves_the_apps_own_files_in_development_mode() -> None:
    with override_settings(DEBUG=True):
        response = Client().get("/static/admin/css/base.css")
        missing = Client().get("/static/admin/css/nothing-here.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert missing.status_code == 404


def test_it_sends_a_browser_asking_for_favicon_ico_to_the_services_icon() -> None:
    with override_settings(DEBUG=True):
        response = Client().get("/favicon.ico", follow=True)
    assert response.redirect_chain == [("/static/eventsproject/icon.png", 302)]
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
