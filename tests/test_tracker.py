"""The first-party browser tracker (``/engauge.js``) in headless Chromium against the real server.

The page that carries the script tag is served by the test itself from another localhost port,
so the tracker runs cross-origin exactly as on a customer's site: its origin is the one listed
in ENGAUGE_CORS for the public key. What the server counted is read back from the dashboard
API; sends are asynchronous (``sendBeacon``), so every check polls with a bounded wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import EngaugeServer, wait_until
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    Response,
    expect,
)

PUBLIC_KEY = "public-test-key-0123456789"
TRACKER = Path(__file__).resolve().parent.parent / "engauge" / "http" / "static" / "engauge.js"
ARRIVE_SECONDS = 5.0
"""How long an interaction may take from the page to the all-time total."""
QUIET_SECONDS = 1.0
"""How long to watch for something that must not arrive."""
WAIT_MS = 5000
INGEST = "/api/interactions"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>A customer's page</title>
<script defer src="{engauge}/engauge.js" data-key="{key}"></script>
</head>
<body>
<h1>Shop</h1>
<script>
  // The site's own code: it uses the tracker, then goes on with its own work.
  window.pageAction = function (action) {{
    window.engauge.track(action, {{ entityType: 'page-test', entityID: action }});
    window.engauge.identify(null);
    document.body.dataset.marker = action;
    return document.body.dataset.marker;
  }};
  // Deferred scripts run before DOMContentLoaded: the tracker is in place by then.
  document.addEventListener('DOMContentLoaded', function () {{
    document.body.dataset.ready = typeof window.engauge.track;
  }});
</script>
</body>
</html>
"""


# -- fixtures ---------------------------------------------------------------------------


class _PageServer(ThreadingHTTPServer):
    daemon_threads = True
    html = b""


class _PageHandler(BaseHTTPRequestHandler):
    """Every path but the favicon answers the one page, so SPA paths load too."""

    server: _PageServer

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.server.html
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest output is for failures


@contextmanager
def page_server() -> Iterator[_PageServer]:
    """A tiny HTTP server for the customer's page on 127.0.0.1 and a free port (its own)."""
    httpd = _PageServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="page-server", daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def origin_of(httpd: _PageServer) -> str:
    host, port = httpd.server_address[:2]
    return f"http://{host}:{port}"


def serve_page(httpd: _PageServer, engauge: EngaugeServer) -> None:
    httpd.html = PAGE.format(engauge=engauge.url, key=PUBLIC_KEY).encode()


@dataclass
class Tab:
    """A page in a fresh browser context, with its errors and its requests to the server."""

    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)
    sent: list[Request] = field(default_factory=list)
    answers: list[Response] = field(default_factory=list)
    failed: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", self._request)
        self.page.on("response", self._response)
        self.page.on("requestfailed", self._failed)

    def _request(self, request: Request) -> None:
        if INGEST in request.url:
            self.sent.append(request)

    def _response(self, response: Response) -> None:
        if INGEST in response.url:
            self.answers.append(response)

    def _failed(self, request: Request) -> None:
        if INGEST in request.url:
            self.failed.append(request)

    def load(self, url: str) -> None:
        self.page.goto(url)
        expect(self.page.locator("body")).to_have_attribute("data-ready", "function")


@dataclass
class Site:
    """The customer's page server, the Engauge server it reports to, and a way to open tabs."""

    origin: str
    engauge: EngaugeServer
    open: Callable[..., Tab]


@pytest.fixture
def open_tab(chromium: Browser) -> Iterator[Callable[..., Tab]]:
    """Open pages, each in a new context (no storage, no cookies); all closed after."""
    contexts: list[BrowserContext] = []

    def open_tab(init_script: str | None = None) -> Tab:
        context = chromium.new_context()
        contexts.append(context)
        if init_script is not None:
            context.add_init_script(init_script)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        return Tab(page, context)

    try:
        yield open_tab
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def site(
    start_server: Callable[..., EngaugeServer], open_tab: Callable[..., Tab]
) -> Iterator[Site]:
    """A page on one localhost port that reports to an Engauge server listing its origin."""
    with page_server() as httpd:
        origin = origin_of(httpd)
        engauge = start_server(env={"ENGAUGE_CORS": origin, "ENGAUGE_PUBLICKEY": PUBLIC_KEY})
        serve_page(httpd, engauge)
        yield Site(origin, engauge, open_tab)


# -- helpers ----------------------------------------------------------------------------


def counts(stats: dict[str, Any]) -> dict[str, int]:
    """A value-statistics object (``actionStats``, ``userTypeStats``) as value → count."""
    return {row["value"]: row["count"] for row in stats["values"]}


def actions(server: EngaugeServer) -> dict[str, int]:
    return counts(server.summary()["actionStats"])


def poll(check: Callable[[], bool], timeout: float, page: Page | None = None) -> bool:
    """``wait_until``; with a ``page``, waiting is done by Playwright, so the page's events
    (requests, errors) are delivered meanwhile: the sync API hands them over only inside its
    own calls."""
    if page is None:
        return wait_until(check, timeout)
    return wait_until(check, timeout, pause=lambda seconds: page.wait_for_timeout(seconds * 1000))


def arrives(server: EngaugeServer, total: int, page: Page | None = None) -> None:
    """Wait (bounded) until the all-time total reaches ``total``; then it must stay there."""
    reached = poll(lambda: server.total() >= total, ARRIVE_SECONDS, page)
    assert reached, f"the total stayed at {server.total()}, expected {total}"
    assert server.settled_total() == total


def rows(server: EngaugeServer, kind: str, **identity: str) -> list[dict[str, Any]]:
    listed = server.get(f"/dashboard/{kind}", limit=1000)
    return [row for row in listed if all(row.get(k) == v for k, v in identity.items())]


# -- the page in a browser --------------------------------------------------------------


def test_a_page_view_arrives_for_an_anonymous_visitor(site: Site) -> None:
    server = site.engauge
    before = server.settled_total()
    tab = site.open()
    tab.load(site.origin + "/shop/start?utm_source=newsletter")
    arrives(server, before + 1)
    assert actions(server) == {"view": 1}
    assert [row["originType"] for row in rows(server, "origin", originID="/shop/start")] == ["page"]
    assert counts(server.summary()["userTypeStats"]) == {"anonymous": 1}
    assert "utm_source" in {row["name"] for row in server.get("/dashboard/properties")}
    assert [answer.status for answer in tab.answers if answer.status != 202] == []
    assert tab.errors == []


def test_push_state_to_a_new_path_is_a_second_view_and_to_the_same_path_nothing(
    site: Site,
) -> None:
    server = site.engauge
    before = server.settled_total()
    tab = site.open()
    tab.load(site.origin + "/app/home")
    arrives(server, before + 1)
    tab.page.evaluate("history.pushState({}, '', '/app/settings')")
    arrives(server, before + 2)
    assert actions(server) == {"view": 2}
    assert len(rows(server, "origin", originType="page", originID="/app/settings")) == 1
    # The same path again (a new query string or hash is still the same page): no view.
    tab.page.evaluate("history.pushState({}, '', '/app/settings?tab=2')")
    tab.page.evaluate("history.pushState({}, '', '/app/settings#profile')")
    # A fence: once this later event has arrived, any view sent before it would have too.
    tab.page.evaluate("engauge.track('fence')")
    arrives(server, before + 3, tab.page)
    assert actions(server) == {"view": 2, "fence": 1}
    assert poll(lambda: len(tab.sent) >= 3, ARRIVE_SECONDS, tab.page)
    assert len(tab.sent) == 3, [request.url for request in tab.sent]


def test_track_sends_an_action_with_its_entity_and_properties(site: Site) -> None:
    server = site.engauge
    before = server.settled_total()
    tab = site.open()
    tab.load(site.origin + "/pricing")
    arrives(server, before + 1)
    tab.page.evaluate(
        "engauge.track('signup', {entityType: 'plan', entityID: 'pro', properties: {seats: 3}})"
    )
    arrives(server, before + 2)
    assert actions(server) == {"view": 1, "signup": 1}
    entities = rows(server, "entity", entityType="plan", entityID="pro")
    assert len(entities) == 1, server.get("/dashboard/entity")
    assert entities[0]["total"] == 1
    seats = rows(server, "properties", name="seats")
    assert [(row["total"], row["types"]) for row in seats] == [(1, ["number"])], seats
    assert tab.errors == []


def test_track_sends_nested_and_odd_properties_as_the_server_takes_them(site: Site) -> None:
    """One odd value must not lose the event: objects become dotted keys, arrays keep their
    strings and numbers, other values are left out."""
    server = site.engauge
    before = server.settled_total()
    tab = site.open()
    tab.load(site.origin + "/nested")
    arrives(server, before + 1)
    tab.page.evaluate(
        "engauge.track('configured', {properties: {meta: {a: 1, deep: {b: 'x'}},"
        " tags: ['red', true, 2, null], skip: () => 1, empty: null}})"
    )
    arrives(server, before + 2)
    names = {row["name"] for row in server.get("/dashboard/properties")}
    assert {"meta.a", "meta.deep.b", "tags"} <= names
    assert not {"skip", "empty", "meta"} & names
    tags = server.get("/dashboard/properties/tags")
    assert tags["stats"]["values"]["values"] == [
        {"value": "red", "count": 1, "percentage": 1.0}
    ]
    assert tags["stats"]["numbers"]["sum"] == 2


def test_no_cookie_is_set_and_the_visitor_id_is_in_local_storage(site: Site) -> None:
    server = site.engauge
    before = server.settled_total()
    tab = site.open()
    tab.load(site.origin + "/welcome")
    tab.page.evaluate("engauge.track('clicked')")
    arrives(server, before + 2)
    assert tab.page.evaluate("document.cookie") == ""
    assert tab.context.cookies(site.origin) == []
    assert tab.context.cookies() == []  # the Engauge origin's neither
    stored = tab.page.evaluate("Object.assign({}, localStorage)")
    assert set(stored) == {"engauge.visitor"}, stored
    visitor = stored["engauge.visitor"]
    assert 0 < len(visitor) <= 64
    # The one id is the visitor's for both events, and it is the anonymous user counted.
    assert counts(server.summary()["userTypeStats"]) == {"anonymous": 2}
    assert server.summary()["users"] == 1


def test_the_page_keeps_running_when_the_server_is_down(site: Site) -> None:
    server = site.engauge
    before = server.settled_total()
    tab = site.open()
    tab.load(site.origin + "/checkout")
    arrives(server, before + 1)
    server.kill()
    marker = tab.page.evaluate(
        "window.engauge.track('purchase', {properties: {amount: 12}});"
        "window.engauge.identify('customer-1', 'customer');"
        "window.pageAction('paid')"
    )
    assert marker == "paid"
    expect(tab.page.locator("body")).to_have_attribute("data-marker", "paid")
    # Without sendBeacon (older browsers) the tracker falls back to fetch, which rejects.
    marker = tab.page.evaluate(
        "delete Navigator.prototype.sendBeacon; window.pageAction('paid-by-fetch')"
    )
    assert marker == "paid-by-fetch"
    expect(tab.page.locator("body")).to_have_attribute("data-marker", "paid-by-fetch")

    def fetch_failed() -> bool:
        return any(request.resource_type == "fetch" for request in tab.failed)

    assert poll(fetch_failed, ARRIVE_SECONDS, tab.page), [r.url for r in tab.sent]
    # An unhandled rejection would be reported right after the failure: give it a moment.
    tab.page.evaluate("new Promise(resolve => setTimeout(resolve, 100))")
    assert tab.errors == []


def test_an_origin_not_in_engauge_cors_is_refused(site: Site) -> None:
    server = site.engauge
    before = server.settled_total()
    tab = site.open()  # a beacon's answer is seen (a refused fetch's is hidden by CORS)
    with page_server() as other:
        serve_page(other, server)
        assert origin_of(other) != site.origin
        with tab.page.expect_response(lambda r: INGEST in r.url, timeout=WAIT_MS) as answer:
            tab.load(origin_of(other) + "/elsewhere")
        assert answer.value.status == 403
        assert answer.value.request.resource_type == "ping"  # sent by navigator.sendBeacon
    assert server.settled_total() == before
    assert rows(server, "origin", originID="/elsewhere") == []
    assert tab.page.evaluate("window.pageAction('still-running')") == "still-running"
    assert tab.errors == []


def test_do_not_track_sends_and_stores_nothing(site: Site) -> None:
    server = site.engauge
    before = server.settled_total()
    tab = site.open(
        init_script=(
            "Object.defineProperty(Navigator.prototype, 'doNotTrack', "
            "{get: function () { return '1'; }, configurable: true})"
        )
    )
    tab.load(site.origin + "/private")
    assert tab.page.evaluate("navigator.doNotTrack") == "1"
    assert tab.page.evaluate("window.pageAction('ignored')") == "ignored"
    assert not poll(lambda: server.total() != before, QUIET_SECONDS, tab.page)
    assert tab.sent == []
    assert tab.page.evaluate("localStorage.length") == 0
    assert tab.errors == []


# -- the public key over plain HTTP -----------------------------------------------------


def interaction(n: int) -> list[dict[str, Any]]:
    return [{"action": "view", "originType": "page", "originID": "/http", "userID": f"v{n}"}]


def post_public(server: EngaugeServer, n: int = 0, origin: str | None = None) -> httpx.Response:
    """One interaction with the public key in ``?key=``, as the tracker sends it."""
    headers = {"Content-Type": "text/plain"}
    if origin is not None:
        headers["Origin"] = origin
    return server.request(
        "POST", INGEST, params={"key": PUBLIC_KEY}, json=interaction(n), headers=headers
    )


def test_the_public_key_over_plain_http(start_server: Callable[..., EngaugeServer]) -> None:
    allowed = "http://127.0.0.1:9"
    server = start_server(env={"ENGAUGE_CORS": allowed, "ENGAUGE_PUBLICKEY": PUBLIC_KEY})
    dashboard = server.request(
        "GET", "/dashboard/summaries", headers={"Authorization": f"Bearer {PUBLIC_KEY}"}
    )
    assert dashboard.status_code == 401, dashboard.text
    no_origin = post_public(server)
    assert no_origin.status_code == 403, no_origin.text
    assert "ENGAUGE_CORS" in no_origin.json()["message"]
    wrong = post_public(server, origin="http://127.0.0.1:10")
    assert wrong.status_code == 403, wrong.text
    assert "access-control-allow-origin" not in wrong.headers
    accepted = post_public(server, origin=allowed)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"accepted": 1}
    assert accepted.headers["access-control-allow-origin"] == allowed
    statuses = [accepted.status_code]
    started = time.monotonic()
    for n in range(1, 300):
        response = post_public(server, n, origin=allowed)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
        assert response.status_code == 202, response.text
    seconds = time.monotonic() - started
    assert statuses[-1] == 429, f"no 429 after {len(statuses)} requests in {seconds:.2f} s"
    # 100 at once, then 20 a second: the first 100 requests can never be refused.
    assert len(statuses) > 100
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["access-control-allow-origin"] == allowed  # a page can read it
    assert server.settled_total() == len(statuses) - 1


def test_the_public_key_is_refused_when_engauge_cors_is_a_star(
    start_server: Callable[..., EngaugeServer],
) -> None:
    server = start_server(env={"ENGAUGE_CORS": "*", "ENGAUGE_PUBLICKEY": PUBLIC_KEY})
    for origin in ("http://127.0.0.1:9", "*", None):  # a script may send any Origin at all
        response = post_public(server, origin=origin)
        assert response.status_code == 403, response.text
        assert "ENGAUGE_CORS" in response.json()["message"]
    assert server.settled_total() == 0


def test_the_tracker_is_served_as_cacheable_javascript(
    start_server: Callable[..., EngaugeServer],
) -> None:
    server = start_server()
    response = server.request("GET", "/engauge.js")
    assert response.status_code == 200
    media = response.headers["content-type"].split(";")[0].strip()
    assert media in {"text/javascript", "application/javascript"}, media
    assert "max-age=" in response.headers["cache-control"], response.headers
    assert response.content == TRACKER.read_bytes()
