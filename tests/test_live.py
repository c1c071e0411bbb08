"""``GET /dashboard/stream``: server-sent summaries within a second, ended by SIGTERM."""

from __future__ import annotations

import itertools
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
        # An earlier change (a session expiring) may be published first; the new
        # interaction must be in an event within the second.
        for name, changed in stream:
            assert name == "summary"
            assert isinstance(changed, list)
            totals = {row["id"]: row["total"] for row in changed}
            if totals.get("allTime") == before["allTime"] + 1:
                break
        waited = time.monotonic() - sent
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


def test_stream_with_the_login_cookie_sends_at_most_one_event_a_second_and_heartbeats(
    server: EngaugeServer,
) -> None:
    """A browser's EventSource authenticates with the cookie; a busy stream is paced to
    one event a second; a quiet one sends a comment every 15 s so proxies keep it open."""
    cookies = {"token": server.token}
    arrivals: list[float] = []
    with (
        httpx.Client(base_url=server.url, timeout=httpx.Timeout(20.0), cookies=cookies) as client,
        client.stream("GET", "/dashboard/stream") as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == "event: summary"
        sender = threading.Thread(target=_send_for, args=(server, 3.0))
        sender.start()
        heartbeat_at = None
        for line in lines:
            now = time.monotonic()
            if line == "event: summary":
                arrivals.append(now)
            if line == ": heartbeat":
                heartbeat_at = now
                break
        sender.join()
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(arrivals) >= 2
    assert min(gaps) >= 0.9, gaps
    assert heartbeat_at is not None
    assert 10 <= heartbeat_at - arrivals[-1] <= 17


def _send_for(server: EngaugeServer, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    index = 0
    while time.monotonic() < deadline:
        server.send({"action": "busy", "userID": f"busy-{index % 5}"})
        index += 1
        time.sleep(0.05)


def test_clients_that_go_away_leave_the_stream_working(server: EngaugeServer) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    for _ in range(20):
        with (
            httpx.Client(base_url=server.url, timeout=5) as client,
            client.stream("GET", "/dashboard/stream", headers=headers) as response,
        ):
            assert next(response.iter_lines()) == "event: summary"
    test_stream_sends_current_summaries_then_changes_within_a_second(server)
