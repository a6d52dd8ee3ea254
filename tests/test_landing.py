"""The landing page at ``/``: what the service is, its version, where to go from there.

In-process (Django's test client) in both modes; the browser tests
(tests/test_browser_pages.py) see it rendered on a production-mode server.
"""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest
from django.test import Client, override_settings

CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'"
)
LINKS = ["/v2/docs", "/v2/schema", "/admin/", "/sys/healthcheck", "/metrics"]


def _links(html: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]+)"', html)


@pytest.fixture(params=[False, True], ids=["production", "development"])
def client(request: pytest.FixtureRequest, transactional_db: None):
    """The test client with DJANGO_DEBUG off and on."""
    with override_settings(DEBUG=request.param):
        yield Client()


def test_it_says_what_the_service_is_and_its_version(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    assert "<title>Events service</title>" in page
    assert f"version {version('events-service')}" in page
    assert "consume" in page
    assert "search" in page


def test_it_answers_with_a_strict_content_security_policy(client) -> None:
    response = client.get("/")
    assert response["Content-Security-Policy"] == CSP
    assert response["X-Frame-Options"] == "DENY"
    page = response.content.decode()
    assert "<script" not in page
    assert "style=" not in page
    assert "<style" not in page
    for ref in re.findall(r'(?:href|src)="([^"]+)"', page):
        assert ref.startswith("/"), f"{ref}: everything comes from the service itself"


def test_every_link_it_shows_exists(client) -> None:
    links = _links(client.get("/").content.decode())
    assert [link for link in links if link in LINKS] == LINKS
    for link in links:
        assert client.get(link).status_code != 404, link


def test_its_stylesheet_is_a_static_file(client) -> None:
    sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', client.get("/").content.decode())
    assert sheets == ["/static/eventsproject/landing.css"]


def test_it_answers_only_get_and_head(client) -> None:
    assert client.head("/").status_code == 200
    assert client.post("/").status_code == 405


@pytest.mark.parametrize("path", ["/v2/", "/sys/", "/v2/nothing/", "/sys/nothing"])
def test_the_api_keeps_its_json_404_next_to_it(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "NotFound"
