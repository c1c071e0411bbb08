"""``GET /dashboard/stream``: server-sent summaries within a second, ended by SIGTERM."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx
from conftest import EngaugeServer


def events(lines: Iterator[str]) -> Iterator[tuple[str, object]]:
    """(event name, decoded data) of each server-sent event; comments are skipped."""
    name = ""
    for line in lines:
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            yield name, json.loads(line.split(":", 1)[1])


def test_stream_sends_current_summaries_then_changes_within_a_second(
    server: EngaugeServer,
) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with (
        httpx.Client(base_url=server.url, timeout=httpx.Timeout(5.0)) as client,
        client.stream("GET", "/dashboard/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response.iter_lines())
        name, first = next(stream)
        assert name == "summary"
        assert isinstance(first, list)
        before = {row["id"]: row["total"] for row in first}
        assert "allTime" in before
        sent = time.monotonic()
        server.send({"action": "live", "userID": "live-user"})
        name, changed = next(stream)
        waited = time.monotonic() - sent
    assert name == "summary"
    assert isinstance(changed, list)
    totals = {row["id"]: row["total"] for row in changed}
    assert totals["allTime"] == before["allTime"] + 1
    assert waited < 2.5


def test_stream_needs_a_login(server: EngaugeServer) -> None:
    assert server.request("GET", "/dashboard/stream").status_code == 401


def test_sigterm_ends_open_streams_and_the_server_exits_promptly(
    start_server: Callable[..., EngaugeServer],
) -> None:
    server = start_server()
    headers = {"Authorization": f"Bearer {server.token}"}
    ended = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(base_url=server.url, timeout=30) as client,
            client.stream("GET", "/dashboard/stream", headers=headers) as response,
        ):
            for _ in response.iter_lines():
                pass
        ended.set()

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 5
    listener.join(timeout=10)
    assert ended.is_set()
