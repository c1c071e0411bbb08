"""The web dashboard in headless Chromium against the real server.

Each test gets a fresh browser context (no cookies). Every page is watched for JavaScript
errors and failed requests other than the expected 401 before logging in; any fails the test.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import PASSWORD, USER, EngaugeServer, days_ago
from playwright.sync_api import Browser, Page, Request, expect
from redis_server import free_port

DOCS = Path(__file__).resolve().parent.parent / "docs"
SCREEN_SECONDS = 1.0
"""The promise: an acknowledged interaction is on screen within a second."""
WAIT_MS = 5000
TOTAL = "[data-metric='total'] .card-value"


class Watched:
    """A page plus every JavaScript error and unexpected failed response it produced."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.expected: set[tuple[int, str]] = {(401, "/refresh-token"), (401, "/login")}
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("response", self._response)
        page.on("request", self._request)

    def _response(self, response: object) -> None:
        status = response.status  # type: ignore[attr-defined]
        url = response.url  # type: ignore[attr-defined]
        expected = any(status == code and url.endswith(path) for code, path in self.expected)
        if status >= 400 and not expected:
            self.errors.append(f"{status} {url}")

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)


@pytest.fixture
def open_page(chromium: Browser) -> Iterator[Callable[..., Watched]]:
    contexts = []
    watched: list[Watched] = []

    def open_page(width: int = 1280, height: int = 900) -> Watched:
        context = chromium.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = Watched(context.new_page())
        page.page.set_default_timeout(WAIT_MS)
        watched.append(page)
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()
    errors = [error for page in watched for error in page.errors]
    assert not errors, errors


def submit_login(page: Page) -> None:
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")


def log_in(page: Page, server: EngaugeServer) -> None:
    page.goto(server.url + "/")
    submit_login(page)
    expect(page.locator(TOTAL)).to_be_visible()
    expect(page.locator("#live")).to_contain_text("Live")


def card(page: Page, metric: str = "total") -> str:
    return page.locator(f"[data-metric='{metric}'] .card-value").inner_text()


def test_a_wrong_password_shows_an_error_and_the_right_one_the_overview(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    page = open_page().page
    page.goto(server.url + "/")
    expect(page.locator("h1")).to_have_text("Log in to Engauge")
    page.fill("#username", USER)
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.locator("#nav")).to_be_hidden()
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("#nav")).to_be_visible()
    expect(page.locator("[data-interval='allTime']")).to_be_visible()


def test_an_interaction_shows_on_the_page_within_a_second_without_reload(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    watched = open_page()
    page = watched.page
    log_in(page, server)
    page.click("[data-interval='allTime']")
    expect(page.locator("[data-interval='allTime']")).to_have_attribute("aria-pressed", "true")
    before = server.settled_total()
    expect(page.locator(TOTAL)).to_have_text(f"{before:,}")
    page.wait_for_timeout(1500)  # let the stream's once-a-second window pass
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    server.send({"action": "view", "userID": "browser-user", "originID": "/pricing"})
    acknowledged = time.monotonic()
    expect(page.locator(TOTAL)).to_have_text(f"{before + 1:,}", timeout=SCREEN_SECONDS * 1000)
    print(f"202 to screen: {time.monotonic() - acknowledged:.3f} s")
    assert navigations == []


def test_the_page_does_not_poll_while_the_stream_works(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    watched = open_page()
    log_in(watched.page, server)
    watched.page.wait_for_timeout(1500)
    seen = len(watched.requests)
    watched.page.wait_for_timeout(3000)
    assert watched.requests[seen:] == []


def test_intervals_history_and_a_chart_of_any_figure(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    server.send({"action": "buy", "userID": "chart-user", "properties": {"amount": 12.5}})
    page = open_page().page
    log_in(page, server)
    page.click("[data-interval='hourly']")
    expect(page.locator("[data-interval='hourly']")).to_have_attribute("aria-pressed", "true")
    label = page.locator("[data-bucket]")
    current = label.get_attribute("data-bucket")
    assert current is not None and current.startswith("hourly:")
    expect(page.locator("[data-step='later']")).to_be_disabled()

    page.click("[data-step='earlier']")
    expect(label).not_to_have_attribute("data-bucket", current)
    expect(label).to_contain_text("history")
    earlier = label.get_attribute("data-bucket")
    assert earlier is not None and earlier < current
    page.click("[data-step='later']")
    expect(label).to_have_attribute("data-bucket", current)

    page.click("[data-metric='users']")
    expect(page.locator("[data-metric='users']")).to_have_attribute("aria-pressed", "true")
    series = page.locator("[data-chart='series']")
    expect(series.locator("figcaption")).to_have_text("Users, hourly")
    expect(series.locator("canvas")).to_be_visible()
    series.locator("summary").click()
    expect(series.locator("tbody tr").first).to_be_visible()
    expect(page.locator("figure:has(figcaption:text-is('Actions')) canvas")).to_be_visible()


def test_a_past_bucket_by_date(open_page: Callable[..., Watched], server: EngaugeServer) -> None:
    page = open_page().page
    log_in(page, server)
    label = page.locator("[data-bucket]")
    page.click("[data-interval='hourly']")
    expect(label).to_have_attribute("data-bucket", re.compile(r"^hourly:"))
    page.click("[data-interval='daily']")
    expect(label).to_have_attribute("data-bucket", re.compile(r"^daily:"))
    page.fill("#bucket-at", "2026-01-15T10:30")
    page.click("button:has-text('Show')")
    expect(page.locator("[data-bucket]")).to_have_attribute(
        "data-bucket", "daily:2026-01-15T00:00:00+00:00"
    )
    expect(page.locator("[data-step='now']")).to_be_enabled()


def test_origins_sort_and_an_origins_detail(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    server.send(
        {"action": "view", "userID": "o1", "originType": "page", "originID": "/alpha"},
        {"action": "view", "userID": "o1", "originType": "page", "originID": "/beta"},
        {"action": "view", "userID": "o2", "originType": "page", "originID": "/beta"},
    )
    page = open_page().page
    log_in(page, server)
    page.click("#nav >> text=Origins")
    expect(page.locator("h1")).to_have_text("Origins")
    expect(page.locator("tbody tr").first).to_be_visible()
    assert page.locator("[data-range]").inner_text().startswith("1\u2013")
    page.click("[data-sort='originID']")
    header = page.locator("th[aria-sort]")
    expect(header).to_have_attribute("aria-sort", "descending")
    ids = page.locator("tbody tr td:nth-child(1)").all_inner_texts()
    assert ids == sorted(ids, reverse=True)
    page.click("[data-sort='originID']")
    expect(header).to_have_attribute("aria-sort", "ascending")
    ids = page.locator("tbody tr td:nth-child(1)").all_inner_texts()
    assert ids == sorted(ids)

    page.locator("tbody tr", has_text="/beta").locator("a").click()
    expect(page.locator("h1")).to_have_text("Origin page · /beta")
    rows = page.locator("table").first.locator("tbody tr")
    expect(rows.first).to_contain_text("All time")
    expect(page.locator("[data-chart='series'] canvas")).to_be_visible()


def test_a_setting_persists_across_a_crash_and_the_page_reconnects(
    start_server: Callable[..., EngaugeServer], open_page: Callable[..., Watched]
) -> None:
    server = start_server(env={"ENGAUGE_PORT": str(free_port())})
    page = open_page().page
    log_in(page, server)
    page.click("#nav >> text=Settings")
    page.uncheck("[name='toggle-hourly']")
    page.fill("[name='retention-daily']", "30")
    page.click("button:has-text('Save settings')")
    expect(page.locator("[data-status]")).to_contain_text("Saved")

    server.kill()  # kill -9: the saved setting must already be on disk
    expect(page.locator("#live")).to_contain_text("Offline")
    server.start()  # the same port: the open page finds the server again by itself
    expect(page.locator("#live")).to_contain_text("Live", timeout=15_000)
    expect(page.locator("[name='toggle-hourly']")).not_to_be_checked()
    expect(page.locator("[name='retention-daily']")).to_have_value("30")
    page.click("#nav >> text=Overview")
    expect(page.locator("[data-interval='hourly']")).to_have_count(0)
    page.click("[data-interval='allTime']")
    before = server.settled_total()
    expect(page.locator(TOTAL)).to_have_text(f"{before:,}")
    server.send({"action": "after-restart", "userID": "reconnected"})
    expect(page.locator(TOTAL)).to_have_text(f"{before + 1:,}")


def test_a_link_opened_before_logging_in_is_shown_after(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    page = open_page().page
    page.goto(server.url + "/#/origins?sort=users")
    submit_login(page)
    expect(page.locator("h1")).to_have_text("Origins")
    expect(page.locator("h1")).to_be_focused()
    expect(page.locator("th[aria-sort]")).to_contain_text("Users")


def test_the_skip_link_moves_focus_to_the_content(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    page = open_page().page
    log_in(page, server)
    page.reload()  # a fresh load leaves focus at the top of the page
    expect(page.locator(TOTAL)).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    expect(page.locator("h1")).to_have_text("Overview")


def test_live_updates_keep_an_opened_table_open_and_charts_in_place(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    page = open_page().page
    log_in(page, server)
    actions = page.locator("figure:has(figcaption:text-is('Actions'))")
    server.send({"action": "table-open", "userID": "table-user"})
    expect(actions.locator("details")).to_be_visible()
    actions.locator("summary").click()
    expect(actions.locator("details")).to_have_attribute("open", "")
    server.send({"action": "table-open-2", "userID": "table-user"})
    expect(actions.locator("tbody")).to_contain_text("table-open-2")
    expect(actions.locator("details")).to_have_attribute("open", "")
    assert actions.locator("canvas").count() == 1


def test_an_invalid_setting_shows_the_servers_message(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    watched = open_page()
    watched.expected.add((400, "/dashboard/settings"))
    page = watched.page
    log_in(page, server)
    page.click("#nav >> text=Settings")
    retention = page.locator("[name='retention-weekly']")
    retention.evaluate("input => input.removeAttribute('max')")
    retention.fill("100001")
    page.click("button:has-text('Save settings')")
    expect(page.get_by_role("alert")).to_contain_text("retention.weekly")


def test_log_out_and_the_cookie_is_gone(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    page = open_page().page
    log_in(page, server)
    page.click("#logout")
    expect(page.locator("h1")).to_have_text("Log in to Engauge")
    expect(page.locator("#live")).to_be_hidden()
    page.reload()
    expect(page.locator("h1")).to_have_text("Log in to Engauge")


def test_a_new_instance_shows_how_to_send_the_first_interaction(
    start_server: Callable[..., EngaugeServer], open_page: Callable[..., Watched]
) -> None:
    server = start_server()
    page = open_page().page
    log_in(page, server)
    empty = page.locator("[data-state='empty']")
    expect(empty).to_contain_text("No interactions yet")
    expect(empty).to_contain_text(f"curl -X POST {server.url}/api/interaction")
    server.send({"action": "first", "userID": "first-user"})
    expect(empty).to_have_count(0)


def test_keyboard_only_login_and_interval_switch(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    page = open_page().page
    page.goto(server.url + "/")
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type(USER)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator(TOTAL)).to_be_visible()
    page.locator("[data-interval='weekly']").focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-interval='weekly']")).to_have_attribute("aria-pressed", "true")


def test_phone_width_has_no_sideways_scrolling(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    """Wide tables scroll inside their box; the page itself never scrolls sideways."""
    server.send({"action": "a-rather-long-action-name", "userID": "phone", "originID": "/x"})
    page = open_page(width=390, height=844).page
    log_in(page, server)
    for section in ("Overview", "Endpoints", "Origins", "Properties", "Settings"):
        page.click(f"#nav >> text={section}")
        expect(page.locator("h1")).to_contain_text(section)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, section
    screenshot = page.screenshot(full_page=True)
    assert screenshot.startswith(b"\x89PNG")


def demo_interactions(days: int = 14) -> list[dict[str, object]]:
    """Two weeks of a small shop: visitors browse pages, some buy, on three kinds of device."""
    interactions: list[dict[str, object]] = []
    for day in range(days):
        for visitor in range(4 + (day * 5) % 9):
            user = f"visitor-{day}-{visitor}"
            device = ("desktop", "phone", "tablet")[visitor % 3]
            at = days_ago(day, hour=8 + visitor % 10)
            pages = ["/", "/pricing", "/docs", "/blog"][: 1 + visitor % 4]
            for step, page in enumerate(pages):
                interactions.append(
                    {
                        "action": "view",
                        "userID": user,
                        "userType": "member" if visitor % 4 == 0 else "visitor",
                        "deviceType": device,
                        "originType": "page",
                        "originID": page,
                        "timestamp": (at + timedelta(minutes=step)).isoformat(),
                    }
                )
            if visitor % 5 == 1:
                interactions.append(
                    {
                        "action": "conversion",
                        "userID": user,
                        "deviceType": device,
                        "entityType": "plan",
                        "entityID": "pro",
                        "originType": "page",
                        "originID": "/pricing",
                        "properties": {"amount": 49},
                        "timestamp": (at + timedelta(minutes=5)).isoformat(),
                    }
                )
    return interactions


def test_overview_screenshot(
    start_server: Callable[..., EngaugeServer], open_page: Callable[..., Watched]
) -> None:
    """Writes ``docs/overview.png`` for the README when UPDATE_SCREENSHOTS=1."""
    server = start_server()
    server.send(*demo_interactions())
    page = open_page(width=1280, height=1000).page
    log_in(page, server)
    expect(page.locator("figure:has(figcaption:text-is('Device types')) canvas")).to_be_visible()
    target = DOCS / "overview.png" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else None
    image = page.screenshot(path=target, full_page=False)
    assert image.startswith(b"\x89PNG") and len(image) > 20_000


def test_the_login_is_renewed_before_it_expires(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    """The token lasts 15 minutes; an open page renews it after about 11 (a fake clock)."""
    watched = open_page()
    page = watched.page
    page.clock.install()
    log_in(page, server)
    renewals = len([url for url in watched.requests if url.endswith("/refresh-token")])
    with page.expect_response(lambda response: response.url.endswith("/refresh-token")) as renewed:
        page.clock.fast_forward("11:30")
    assert renewed.value.status == 200
    assert len([url for url in watched.requests if url.endswith("/refresh-token")]) > renewals
    expect(page.locator("#live")).to_contain_text("Live")


def test_every_list_opens_its_details(
    open_page: Callable[..., Watched], server: EngaugeServer
) -> None:
    server.send(
        {
            "action": "read",
            "userID": "detail-user",
            "entityType": "article",
            "entityID": "a-1",
            "originType": "page",
            "originID": "/articles",
            "properties": {"section/name": "news", "words": 812},
        }
    )
    page = open_page().page
    log_in(page, server)
    for section, row, heading in (
        ("Endpoints", "read", "Endpoint read · article · a-1 · page · /articles"),
        ("Entities", "a-1", "Entity article · a-1"),
        ("Properties", "section/name", "Property section/name"),
    ):
        page.click(f"#nav >> text={section}")
        expect(page.locator("h1")).to_have_text(section)
        page.locator("tbody tr", has_text=row).first.locator("a").click()
        expect(page.locator("h1")).to_have_text(heading)
    expect(page.locator("figure:has(figcaption:text-is('Values')) canvas")).to_be_visible()
