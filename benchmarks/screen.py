"""Ingest to visible: the time from a ``202`` to the live stream's event and to the number
changing on the dashboard in headless Chromium, plus the overview's first paint.

Interactions are sent one at a time at random gaps of 0.2-1.3 s, so some land inside the
stream's once-a-second window and wait for it, as they would in use.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
from typing import Any

import httpx
from playwright.sync_api import Page, expect, sync_playwright

from benchmarks.scenarios import API_KEY, PASSWORD, RunningServer
from tests.debian import CHROMIUM, CHROMIUM_ARGS, install_chromium

TOTAL = "[data-metric='total'] .card-value"


def screen(samples: int = 40, seed: int = 7) -> dict[str, Any]:
    reason = install_chromium()
    if reason is not None:
        return {"skipped": reason}
    pace = random.Random(seed)
    with (
        tempfile.TemporaryDirectory() as base,
        RunningServer(base, "everysec") as url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        first_paint = _log_in(page, url)
        page.click("[data-interval='allTime']")
        expect(page.locator(TOTAL)).to_have_text("0")
        stream = _StreamClock(url, page.context.cookies())
        stream.start()
        to_page: list[float] = []
        acknowledged: dict[int, float] = {}
        with httpx.Client(base_url=url, headers={"api-key": API_KEY}) as client:
            for number in range(1, samples + 1):
                time.sleep(pace.uniform(0.2, 1.3))
                body = {"action": "view", "userID": f"screen-{number}"}
                client.post("/api/interaction", json=body).raise_for_status()
                acknowledged[number] = time.monotonic()
                expect(page.locator(TOTAL)).to_have_text(f"{number:,}", timeout=10_000)
                to_page.append(time.monotonic() - acknowledged[number])
        stream.stop()
        browser.close()
    to_stream = [stream.seen[n] - acknowledged[n] for n in acknowledged if n in stream.seen]
    return {
        "samples": samples,
        "firstPaintMs": first_paint,
        "ackToStreamEventMs": _percentiles(to_stream),
        "ackToScreenMs": _percentiles(to_page),
    }


def _log_in(page: Page, url: str) -> dict[str, float]:
    """Log in, then time a fresh load of the overview: first paint and numbers shown."""
    page.goto(url + "/")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    expect(page.locator(TOTAL)).to_be_visible()
    started = time.monotonic()
    page.reload()
    expect(page.locator(TOTAL)).to_be_visible()
    numbers = (time.monotonic() - started) * 1000
    paint = page.evaluate(
        "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
    )
    return {"firstContentfulPaint": round(paint or 0, 1), "numbersShown": round(numbers, 1)}


class _StreamClock:
    """Reads ``/dashboard/stream`` in a thread and notes when each all-time total arrived."""

    def __init__(self, url: str, cookies: list[Any]) -> None:
        self.url = url
        self.cookies = {cookie["name"]: cookie["value"] for cookie in cookies}
        self.seen: dict[int, float] = {}
        self.client = httpx.Client(base_url=url, cookies=self.cookies, timeout=None)
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.client.close()
        self.thread.join(timeout=5)

    def _read(self) -> None:
        try:
            with self.client.stream("GET", "/dashboard/stream") as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        arrived = time.monotonic()
                        for summary in json.loads(line[5:]):
                            if summary["interval"] == "allTime":
                                self.seen.setdefault(summary["total"], arrived)
        except (httpx.HTTPError, RuntimeError):
            return  # closed by stop()


def _percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ordered = sorted(value * 1000 for value in seconds)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50": round(statistics.median(ordered), 1),
        "p90": round(cuts[89], 1),
        "p99": round(cuts[98], 1),
        "max": round(ordered[-1], 1),
    }
