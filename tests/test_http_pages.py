"""The dashboard page and its static files over plain HTTP: content, caching, security headers."""

from __future__ import annotations

import re

import pytest
from conftest import EngaugeServer


def test_the_page_is_served_at_the_root_with_a_strict_content_security_policy(
    server: EngaugeServer,
) -> None:
    response = server.request("GET", "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    assert '<script type="module" src="/static/app.js">' in response.text


def test_the_page_loads_nothing_from_another_host(server: EngaugeServer) -> None:
    """Self-hosted must work offline: every script, style and font comes from this server."""
    page = server.request("GET", "/").text
    for address in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert address.startswith(("/", "#", "data:")), address
        if address.startswith("/static/"):
            assert server.request("GET", address).status_code == 200, address


@pytest.mark.parametrize(
    "path",
    ["/static/app.js", "/static/views/overview.js", "/static/app.css"],
)
def test_static_files_are_revalidated_and_typed(server: EngaugeServer, path: str) -> None:
    response = server.request("GET", path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    etag = response.headers["etag"]
    again = server.request("GET", path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert "from 'http" not in response.text and "import(" not in response.text


def test_the_chart_library_is_installed_from_the_lock(server: EngaugeServer) -> None:
    response = server.request("GET", "/static/vendor/chart.umd.min.js")
    assert response.status_code == 200, "run make assets: the chart library is missing"
    assert response.headers["content-type"].startswith("text/javascript")
    assert len(response.content) > 100_000


def test_get_login_leads_to_the_login_page(server: EngaugeServer) -> None:
    response = server.request("GET", "/login")
    assert response.status_code == 302
    assert response.headers["location"] == "/#/login"


def test_a_missing_static_file_is_404_json(server: EngaugeServer) -> None:
    response = server.request("GET", "/static/nope.js")
    assert response.status_code == 404
    assert response.json()["message"]
