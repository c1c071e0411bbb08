"""Persistence and operation end to end (SPEC §2, §3, §8, §9): restarts, crashes, bad config.

Each test runs its own server on its own base path, because each one stops, kills or
damages it on purpose.
"""

from __future__ import annotations

import math
import re
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import EngaugeServer, base_env, days_ago, no_cookie_client, wait_until

ALL_INTERVALS = ["allTime", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly"]
KINDS = ["endpoint", "origin", "entity"]
PAST_DAYS = (2, 40, 500)
"""Backfill ages: within hourly retention, within daily retention, beyond it (400 days)."""


def assert_same(before: Any, after: Any, path: str = "$") -> None:
    """Deep equality; floats may differ in the last bits (sums merged in another order)."""
    if isinstance(before, float) or isinstance(after, float):
        assert isinstance(after, int | float), f"{path}: {before!r} != {after!r}"
        assert math.isclose(before, after, rel_tol=1e-9, abs_tol=1e-9), f"{path}: {before} {after}"
    elif isinstance(before, dict):
        assert isinstance(after, dict), f"{path}: {before!r} != {after!r}"
        assert before.keys() == after.keys(), f"{path}: keys {before.keys() ^ after.keys()}"
        for key in before:
            assert_same(before[key], after[key], f"{path}.{key}")
    elif isinstance(before, list):
        assert isinstance(after, list), f"{path}: {before!r} != {after!r}"
        assert len(before) == len(after), f"{path}: {len(before)} != {len(after)} items"
        for index, (one, other) in enumerate(zip(before, after, strict=True)):
            assert_same(one, other, f"{path}[{index}]")
    else:
        assert before == after, f"{path}: {before!r} != {after!r}"


def capture(server: EngaugeServer, moments: list[float]) -> dict[str, Any]:
    """Everything the dashboard API shows about the buckets containing ``moments``."""
    state: dict[str, Any] = {}
    for interval in ALL_INTERVALS:
        for at in moments:
            state[f"summary {interval} {at}"] = server.summary(interval, at)
    for kind in [*KINDS, "properties"]:
        rows = server.get(f"/dashboard/{kind}", limit=1000)
        state[f"list {kind}"] = rows
        for row in rows:
            for at in moments:
                state[f"{kind} {row['id']} {at}"] = server.get(
                    f"/dashboard/{kind}/{row['id']}", at=at
                )
    frame = {"from": moments[0] - 45 * 86400, "to": moments[0]}
    metrics = "total,users,sessions.started,sessions.late,sessions.completed,conversions.revenue"
    state["series"] = server.get("/dashboard/series", interval="daily", metrics=metrics, **frame)
    return state


def varied_stream(now: int) -> list[dict[str, Any]]:
    """Users, devices, session types, origins, entities, properties, conversions, a late
    event, a duplicate id and backfill 2, 40 and 500 days old, all at whole seconds."""
    past = [int(days_ago(days).timestamp()) for days in PAST_DAYS]
    stream: list[dict[str, Any]] = []
    for i in range(24):
        user = f"user-{i % 5}"
        item: dict[str, Any] = {
            "action": ["view", "click", "conversion"][i % 3],
            "userID": user,
            "userType": "member" if i % 2 else "guest",
            "deviceType": ["phone", "desktop"][i % 2],
            "sessionType": "app" if i % 4 == 0 else "",
            "originType": "page",
            "originID": f"page-{i % 4}",
            "entityType": "product",
            "entityID": f"p-{i % 3}",
            "timestamp": now - 600 + i * 10,
            "properties": {"tags": ["a", "b", i], "flag": i % 2 == 0, "score": i * 1.5},
        }
        if item["action"] == "conversion":
            item["properties"]["amount"] = [10.5, 3, "free"][i % 3]
        stream.append(item)
    for index, moment in enumerate(past):
        stream.extend(
            {"action": "view", "userID": f"old-{index}-{k}", "timestamp": moment + k * 60}
            for k in range(3)
        )
    late = {"action": "view", "userID": "user-1", "userType": "member", "timestamp": now - 3 * 3600}
    stream.append(late)
    stream.append({"action": "retry", "userID": "user-2", "id": "once", "timestamp": now})
    stream.append({"action": "retry", "userID": "user-2", "id": "once", "timestamp": now})
    return stream


def send_and_settle(server: EngaugeServer, stream: list[dict[str, Any]]) -> None:
    """Send in several batches (several journal records) and wait until all are counted."""
    before = server.settled_total()
    for start in range(0, len(stream), 7):
        server.send(*stream[start : start + 7])
    unique = len(stream) - 1  # the duplicate id is counted once
    assert wait_until(lambda: server.total() == before + unique, timeout=2.0)


def test_restart_keeps_every_statistic(start_server: Callable[..., EngaugeServer]) -> None:
    """SIGTERM then start on the same base path: every figure, list and id is the same,
    and the open sessions come back open (a new event joins, no session is counted twice)."""
    server = start_server()
    now = int(time.time()) - 60
    send_and_settle(server, varied_stream(now))
    moments = [float(now)] + [days_ago(days).timestamp() for days in PAST_DAYS]
    assert server.summary("monthly", moments[3])["total"] == 3

    def dropped_by_retention() -> bool:
        return server.summary("daily", moments[3])["total"] == 0

    assert wait_until(dropped_by_retention, timeout=3.0)
    before = capture(server, moments)
    assert before[f"summary allTime {moments[0]}"]["sessions"]["late"] == 1
    server.restart()
    assert_same(before, capture(server, moments))
    counted = server.summary()
    server.send({"action": "view", "userID": "user-0", "userType": "guest", "timestamp": now + 30})
    assert wait_until(lambda: server.total() == counted["total"] + 1, timeout=1.0)
    assert server.summary()["sessions"]["started"] == counted["sessions"]["started"]


def test_restart_keeps_completed_sessions(start_server: Callable[..., EngaugeServer]) -> None:
    """Sessions completed by the clock are neither lost nor counted again after a restart."""
    server = start_server(env={"ENGAUGE_SESSIONDELAY": "0.025"})
    now = int(time.time()) - 60
    stream = [
        {"action": "view", "userID": "s1", "originID": "home", "timestamp": now},
        {"action": "view", "userID": "s1", "originID": "cart", "timestamp": now + 1},
        {"action": "conversion", "userID": "s1", "properties": {"amount": 7}, "timestamp": now + 1},
        {"action": "view", "userID": "s2", "originID": "home", "timestamp": now},
        {"action": "view", "userID": "s2", "originID": "home", "timestamp": now - 100},
        {"action": "view", "userID": "s3", "deviceType": "tv", "timestamp": now},
    ]
    send_and_settle(server, [*stream, {**stream[0], "id": "twice"}, {**stream[0], "id": "twice"}])

    def all_completed() -> bool:
        sessions = server.summary()["sessions"]
        return sessions["completed"] == sessions["started"] == 3

    assert wait_until(all_completed, timeout=5.0)
    before = capture(server, [float(now)])
    assert before[f"summary allTime {float(now)}"]["sessions"]["late"] == 1
    server.restart()
    assert_same(before, capture(server, [float(now)]))


def test_sigint_also_exits_cleanly_and_keeps_data(
    start_server: Callable[..., EngaugeServer],
) -> None:
    """SIGINT, like SIGTERM, drains and exits 0; the data is there after the next start."""
    server = start_server()
    server.send({"action": "view", "userID": "int"}, {"action": "view", "userID": "int2"})
    assert server.stop(signal.SIGINT) == 0
    server.start()
    assert server.settled_total() == 2


# -- crash -------------------------------------------------------------------------------------


class Burst:
    """Several clients sending interactions as fast as they can until stopped.

    ``acknowledged`` counts items answered 202; ``unanswered`` those of requests cut
    off by the crash (they may or may not have been journaled).
    """

    def __init__(self, server: EngaugeServer, clients: int) -> None:
        self.url = server.url
        self.apikey = server.apikey
        self.stop = threading.Event()
        self.acknowledged = [0] * clients
        self.unanswered = [0] * clients
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(clients)]

    def run(self, index: int) -> None:
        headers = {"api-key": self.apikey}
        with no_cookie_client(self.url, keep_alive=True) as client:
            for n in range(1_000_000):
                if self.stop.is_set():
                    return
                size = 1 + n % 25
                batch = [{"action": "burst", "userID": f"c{index}-{n % 40}"}] * size
                try:
                    if size == 1:
                        response = client.post("/api/interaction", json=batch[0], headers=headers)
                    else:
                        response = client.post("/api/interactions", json=batch, headers=headers)
                except httpx.HTTPError:
                    self.unanswered[index] += size
                    return
                if response.status_code == 202:
                    self.acknowledged[index] += response.json()["accepted"]

    def __enter__(self) -> Burst:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
        assert not any(thread.is_alive() for thread in self.threads)


def test_kill_9_during_a_burst_loses_nothing_acknowledged(
    start_server: Callable[..., EngaugeServer],
) -> None:
    """A 2xx means durable: after kill -9 in the middle of a burst from four clients, every
    acknowledged interaction is counted after the restart, and nothing is invented."""
    server = start_server()
    with Burst(server, clients=4) as burst:
        assert wait_until(lambda: sum(burst.acknowledged) >= 3000, timeout=10.0, step=0.05)
        server.kill()
    acknowledged = sum(burst.acknowledged)
    server.start()
    total = server.settled_total()
    assert acknowledged <= total <= acknowledged + sum(burst.unanswered)


def test_kill_9_recovers_the_same_statistics(start_server: Callable[..., EngaugeServer]) -> None:
    """After kill -9 (no snapshot, no graceful sync) the recovered figures equal those of
    the uninterrupted run."""
    server = start_server()
    now = int(time.time()) - 60
    send_and_settle(server, varied_stream(now))
    moments = [float(now), days_ago(PAST_DAYS[0]).timestamp()]
    before = capture(server, moments)
    server.kill()
    server.start()
    assert_same(before, capture(server, moments))


# -- damaged journal -----------------------------------------------------------------------------


def newest_journal_file(basepath: Path) -> Path:
    files = sorted((basepath / "journal").glob("*"))
    files = [path for path in files if path.is_file()]
    assert files, "no journal file"
    return files[-1]


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"\x07garbage-bytes-\xff\xfe", id="garbage"),
        pytest.param(b"\x01\x02\x03", id="partial-header"),
        pytest.param(struct.pack("<II", 500, 12345) + b"half a record", id="short-record"),
        pytest.param(struct.pack("<II", 4, 0) + b"\x91\x90\x90\x90", id="bad-checksum"),
    ],
)
def test_torn_journal_tail_is_cut_with_a_warning(
    start_server: Callable[..., EngaugeServer], garbage: bytes
) -> None:
    """A write torn by a crash is cut off at start-up with a warning; earlier data stays,
    and later appends are read back whole."""
    server = start_server()
    server.send(*({"action": "view", "userID": f"t{i}"} for i in range(5)))
    server.send({"action": "view", "userID": "t5"})
    assert server.settled_total() == 6
    assert server.stop() == 0
    journal = newest_journal_file(server.basepath)
    size = journal.stat().st_size
    with journal.open("ab") as file:
        file.write(garbage)
    server.start()
    assert server.settled_total() == 6
    log = server.stderr()
    assert re.search(r"WARNING.*journal", log), log
    assert journal.stat().st_size == size
    server.send({"action": "view", "userID": "after"})
    server.restart()
    assert server.settled_total() == 7
    assert "WARNING" not in server.stderr()


# -- bad input that reaches the journal -------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    ["0001-01-01T00:00:00+01:00", "0001-01-01T00:30:00+14:00", "0001-01-01"],
)
def test_extreme_past_timestamp_does_not_crash_the_server(
    start_server: Callable[..., EngaugeServer], timestamp: str
) -> None:
    """Backfill of any age is accepted or refused with 400, but never kills the server nor
    poisons the journal so that it cannot start again ("the service always starts")."""
    server = start_server()
    body = {"action": "v", "userID": "u", "timestamp": timestamp}
    try:
        response = server.post_api("/api/interaction", body)
    except httpx.HTTPError as error:
        response = None
        answer = repr(error)
    else:
        answer = f"{response.status_code} {response.text}"
    time.sleep(0.3)
    if not server.alive():
        server.kill()
        pytest.fail(f"the server died after answering {answer}; {restart_report(server)}")
    assert response is not None and response.status_code in (202, 400), answer
    server.restart()
    assert server.request("GET", "/health").status_code == 200


def restart_report(server: EngaugeServer) -> str:
    """Whether the server starts again on the same base path (and why not)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "engauge", "serve"],
        env=base_env(server.basepath, server.extra_env),
        cwd=server.basepath.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, stderr = process.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return "it starts again on the same base path"
    last = stderr.decode(errors="replace").strip().splitlines()[-1:]
    return f"and it cannot start again on the same base path: {last}"


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("ENGAUGE_PORT", "abc", "ENGAUGE_PORT"),
        ("ENGAUGE_PORT", "70000", "ENGAUGE_PORT"),
        ("ENGAUGE_TIMEZONE", "Mars/Base", "ENGAUGE_TIMEZONE"),
        ("ENGAUGE_SESSIONDELAY", "-5", "ENGAUGE_SESSIONDELAY"),
        ("ENGAUGE_FSYNC", "sometimes", "ENGAUGE_FSYNC"),
        ("ENGAUGE_WEEKSTART", "friday", "ENGAUGE_WEEKSTART"),
        ("ENGAUGE_APIKEY", "short", "ENGAUGE_APIKEY"),
        ("ENGAUGE_HTTPS", "true", "ENGAUGE_CERTFILE"),
    ],
)
def test_invalid_configuration_stops_start_up(
    tmp_path: Path, variable: str, value: str, named: str
) -> None:
    """An invalid ENGAUGE_* value exits non-zero with one line on stderr naming it."""
    env = base_env(tmp_path / "data", {variable: value})
    result = subprocess.run(
        [sys.executable, "-m", "engauge", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert "listening" not in result.stdout


# -- generated secrets ---------------------------------------------------------------------------


def test_generated_secrets_are_stored_privately_and_printed_once(
    start_server: Callable[..., EngaugeServer],
) -> None:
    """Without configured secrets, strong ones are generated, stored 0600, printed once,
    and still valid after a restart."""
    unset: dict[str, str | None] = {
        "ENGAUGE_APIKEY": None,
        "ENGAUGE_PASSWORD": None,
        "ENGAUGE_JWT": None,
    }
    server = start_server(env=unset)
    printed = server.stdout()
    key = re.search(r"API key: (\S+)", printed)
    password = re.search(r"Dashboard login: admin / (\S+)", printed)
    assert key and password, printed
    assert len(key.group(1)) >= 16 and len(password.group(1)) >= 16
    secrets = server.basepath / "secrets.json"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    server.apikey, server.password = key.group(1), password.group(1)
    server.restart()
    assert key.group(1) not in server.stdout()
    assert password.group(1) not in server.stdout()
    assert server.post_api("/api/interaction", {"action": "v", "userID": "u"}).status_code == 202
    login = {"username": "admin", "password": password.group(1)}
    assert server.request("POST", "/login", json=login).status_code == 200
    configured_elsewhere = {**login, "password": "test-password-0123456789"}
    assert server.request("POST", "/login", json=configured_elsewhere).status_code == 401


def test_started_line_names_the_bound_address(start_server: Callable[..., EngaugeServer]) -> None:
    """ENGAUGE_PORT=0 picks a free port and the start-up line tells which."""
    server = start_server()
    port = int(server.url.rsplit(":", 1)[1])
    assert 0 < port < 65536
    assert server.request("GET", "/health").text == "alive"
