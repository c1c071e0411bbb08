"""A cluster of real processes on 127.0.0.1: redis-server, ingest, aggregate and dashboard
nodes, each an ``engauge serve --role …`` subprocess.

Checked: the same generated stream gives the same statistics, bucket by bucket, through a
cluster as through one process; ``kill -9`` of an aggregate node under load moves its
partitions and loses or double-counts nothing acknowledged; Redis killed and restarted
from its AOF loses nothing acknowledged; each role serves its part and says where the rest
is; a node refuses a configuration that disagrees with its cluster.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import EngaugeServer, base_env, stop_all, wait_until
from debian import install_redis
from redis_server import RedisServer
from test_live import events
from test_stream_model import assert_close

from engauge.stream.calendar import INTERVALS

PARTITIONS = 8
CATCH_UP_SECONDS = 60.0
TAKEOVER_SECONDS = 45.0
"""A dead node's leases expire after 10 s; its partitions are then recovered elsewhere."""


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    reason = install_redis()
    if reason is not None:
        pytest.skip(reason)
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()


class Cluster:
    """Nodes of one cluster; every one is stopped (and must exit 0) or killed after."""

    def __init__(self, root: Path, redis: RedisServer) -> None:
        self.root = root
        self.redis = redis
        self.nodes: list[EngaugeServer] = []

    def node(self, role: str, **env: str) -> EngaugeServer:
        server = EngaugeServer(
            self.root / f"{role}{len(self.nodes)}",
            {
                "ENGAUGE_REDIS": self.redis.url,
                "ENGAUGE_PARTITIONS": str(PARTITIONS),
                "ENGAUGE_SNAPSHOTEVERY": "1",
                **env,
            },
            arguments=("--role", role),
        )
        self.nodes.append(server)
        return server.start()


@pytest.fixture
def cluster(tmp_path: Path, redis: RedisServer) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path, redis)
    try:
        yield nodes
    finally:
        stop_all(nodes.nodes)


def health(node: EngaugeServer) -> dict[str, Any]:
    response = node.request("GET", "/health")
    assert response.status_code == 200, response.text
    return dict(response.json())


def aggregating(node: EngaugeServer) -> set[int]:
    """The partitions an aggregate node owns and has recovered."""
    return {row["partition"] for row in health(node)["partitions"] if row["state"] == "aggregating"}


def caught_up(nodes: list[EngaugeServer]) -> bool:
    rows = [row for node in nodes for row in health(node)["partitions"]]
    owned = sorted(row["partition"] for row in rows if row["state"] == "aggregating")
    return owned == list(range(PARTITIONS)) and all(row["lagEntries"] == 0 for row in rows)


def generated_stream(
    count: int, users: int, seed: int, span: float = 3 * 86_400
) -> list[dict[str, Any]]:
    """Interactions over the last ``span`` seconds (by default three days: many hourly and
    daily buckets), with sessions, conversions with revenue, numeric and text properties."""
    rng = random.Random(seed)
    start = time.time() - span
    items = []
    for number in range(count):
        action = rng.choice(("view", "view", "click", "share", "conversion"))
        item: dict[str, Any] = {
            "action": action,
            "userID": f"u{rng.randrange(users)}",
            "userType": rng.choice(("visitor", "member")),
            "originType": "page",
            "originID": f"/p/{rng.randrange(10)}",
            "entityType": "product",
            "entityID": f"e{rng.randrange(6)}",
            "deviceType": rng.choice(("mobile", "desktop")),
            "timestamp": start + number * (span - 60) / count,
            "properties": {"ref": rng.choice(("google", "direct")), "n": rng.randrange(5)},
        }
        if action == "conversion":
            item["properties"]["amount"] = rng.randrange(1, 200)
        items.append(item)
    return items


def batches(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[offset : offset + size] for offset in range(0, len(items), size)]


def unordered(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary with its conversion rows keyed by endpoint: rows of equal counts come in no
    particular order (SPEC leaves it open), in one process as in a cluster."""
    rows = summary.pop("conversionStats")
    summary["conversionStats"] = {row.pop("endpoint"): row for row in rows}
    return summary


def observable(server: EngaugeServer, instants: list[float]) -> dict[str, Any]:
    """Everything the dashboard API shows of the data: every bucket the stream touched, of
    every interval, and the breakdown lists (rows ordered by id: ties order freely)."""
    seen: dict[str, Any] = {"allTime": unordered(server.summary())}
    for interval in INTERVALS:
        for at in instants:
            summary = server.summary(interval, at)
            seen[summary["id"]] = unordered(summary)
    for kind in ("origin", "entity", "endpoint"):
        rows = server.get(f"/dashboard/{kind}", limit=1000)
        seen[kind] = sorted(rows, key=lambda row: str(row["id"]))
    seen["properties"] = sorted(server.get("/dashboard/properties", limit=1000), key=str)
    return seen


def test_a_cluster_shows_what_one_process_shows(
    cluster: Cluster, start_server: Callable[..., EngaugeServer]
) -> None:
    """Redis, 2 ingest nodes, 2 aggregate nodes and a dashboard node, fed through both
    ingest nodes, against one process fed the same batches in the same order."""
    ingest = [cluster.node("ingest"), cluster.node("ingest")]
    aggregators = [cluster.node("aggregate"), cluster.node("aggregate")]
    dashboard = cluster.node("dashboard")
    single = start_server()
    items = generated_stream(4000, users=300, seed=20261204)
    for number, batch in enumerate(batches(items, 250)):
        ingest[number % 2].send(*batch)
        single.send(*batch)
    assert wait_until(lambda: caught_up(aggregators), CATCH_UP_SECONDS)
    assert wait_until(
        lambda: [len(aggregating(node)) for node in aggregators] == [PARTITIONS // 2] * 2,
        TAKEOVER_SECONDS,
    )  # the fair shares: whichever started first hands half over
    assert wait_until(lambda: caught_up(aggregators), CATCH_UP_SECONDS)
    assert wait_until(lambda: dashboard.total() == len(items), CATCH_UP_SECONDS)
    instants = sorted({item["timestamp"] for item in items[::20]})
    assert_close(observable(dashboard, instants), observable(single, instants), "cluster")


class Load:
    """Sends batches of live interactions (of the last two minutes) to ``target`` from a
    thread until stopped; counts what was acknowledged and what was refused."""

    def __init__(self, target: EngaugeServer, size: int = 50) -> None:
        self.target = target
        self.size = size
        self.acknowledged = 0
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        sent = 0
        with httpx.Client(base_url=self.target.url, timeout=10) as client:
            while not self._stop.is_set():
                batch = generated_stream(self.size, users=500, seed=sent, span=120)
                sent += 1
                try:
                    response = client.post(
                        "/api/interactions", json=batch, headers={"api-key": self.target.apikey}
                    )
                except httpx.HTTPError:
                    self.refused += self.size
                    time.sleep(0.1)
                    continue
                if response.status_code == 202:
                    self.acknowledged += self.size
                else:
                    assert response.status_code == 503, response.text
                    self.refused += self.size
                    time.sleep(0.1)


def test_kill_9_of_an_aggregate_node_under_load_moves_its_partitions(cluster: Cluster) -> None:
    """A second node joins (the first hands half over), then the first is killed while
    interactions pour in: the survivor recovers its partitions from their snapshots and
    streams, and the dashboard counts every acknowledged interaction exactly once."""
    ingest = cluster.node("ingest")
    dashboard = cluster.node("dashboard")
    first = cluster.node("aggregate")
    assert wait_until(lambda: len(aggregating(first)) == PARTITIONS, TAKEOVER_SECONDS)
    with Load(ingest) as load:
        second = cluster.node("aggregate")
        assert wait_until(
            lambda: len(aggregating(first)) == len(aggregating(second)) == PARTITIONS // 2,
            TAKEOVER_SECONDS,
        )
        time.sleep(2)  # snapshots of the handed-over partitions exist; more load arrives
        first.kill()
        assert wait_until(lambda: len(aggregating(second)) == PARTITIONS, TAKEOVER_SECONDS)
        time.sleep(1)
    assert load.acknowledged > 0 and load.refused == 0
    assert wait_until(lambda: caught_up([second]), CATCH_UP_SECONDS)
    assert wait_until(lambda: dashboard.total() >= load.acknowledged, CATCH_UP_SECONDS)
    time.sleep(2)  # a publication round: anything counted twice would show now
    assert dashboard.total() == load.acknowledged


def test_redis_killed_and_restarted_from_its_aof_loses_nothing_acknowledged(
    cluster: Cluster,
) -> None:
    """While Redis is down, ingestion answers 503 (nothing acknowledged); after it restarts
    from its AOF (``appendfsync always``), every acknowledged interaction is counted. A
    request refused at the moment of the kill may still have reached the AOF."""
    node = cluster.node("all")
    assert wait_until(lambda: caught_up([node]), TAKEOVER_SECONDS)
    with Load(node) as load:
        time.sleep(2)
        cluster.redis.kill()
        time.sleep(2)
        cluster.redis.start()
        time.sleep(4)
    assert load.acknowledged > 0 and load.refused > 0
    assert wait_until(lambda: caught_up([node]), CATCH_UP_SECONDS)
    assert wait_until(lambda: node.total() >= load.acknowledged, CATCH_UP_SECONDS)
    assert load.acknowledged <= node.total() <= load.acknowledged + load.refused


def test_each_role_serves_its_part_and_names_the_role_for_the_rest(cluster: Cluster) -> None:
    ingest = cluster.node("ingest")
    aggregate = cluster.node("aggregate")
    dashboard = cluster.node("dashboard")
    assert health(ingest)["role"] == "ingest"
    assert health(dashboard) == {
        "status": "alive",
        "role": "dashboard",
        "dashboard": {"loaded": True},
    }
    refused = ingest.request("GET", "/dashboard/summaries")
    assert refused.status_code == 404
    assert "--role dashboard or all" in refused.json()["message"]
    refused = dashboard.post_api("/api/interaction", {"action": "view", "userID": "u1"})
    assert refused.status_code == 404
    assert "--role ingest or all" in refused.json()["message"]
    for path in ("/api/interaction", "/dashboard/summaries", "/"):
        assert aggregate.request("GET", path).status_code == 404, path
    for node in (ingest, aggregate, dashboard):
        assert node.request("GET", "/health/ready").status_code == 200
        assert node.request("GET", "/metrics").status_code == 200
    ingest.send({"action": "view", "userID": "u1"})
    assert wait_until(lambda: dashboard.total() == 1, CATCH_UP_SECONDS)
    for path in ("/dashboard/export/interactions", "/dashboard/users?userID=u1"):
        method = "DELETE" if "users" in path else "GET"
        answer = dashboard.dash(method, path)
        assert answer.status_code == 501, path
        assert "ENGAUGE_REDIS" in answer.json()["message"]


def test_settings_changed_on_a_dashboard_node_reach_every_node(cluster: Cluster) -> None:
    ingest = cluster.node("ingest")
    aggregate = cluster.node("aggregate")
    dashboard = cluster.node("dashboard")
    other = cluster.node("dashboard")
    ingest.send({"action": "view", "userID": "u1"})
    assert wait_until(lambda: other.total() == 1, CATCH_UP_SECONDS)
    changed = dashboard.dash("PUT", "/dashboard/settings", json={"statsToggles": {"hourly": False}})
    assert changed.status_code == 200, changed.text

    def hourly_gone() -> bool:
        shown = {row["interval"] for row in other.get("/dashboard/summaries")}
        return "hourly" not in shown and "daily" in shown

    assert wait_until(hourly_gone, CATCH_UP_SECONDS)
    assert other.get("/dashboard/settings")["statsToggles"]["hourly"] is False
    assert aggregate.alive()


def run_node(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engauge", "serve", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_node_refuses_a_configuration_its_cluster_cannot_use(
    tmp_path: Path, redis: RedisServer
) -> None:
    lone = run_node(base_env(tmp_path / "lone"), "--role", "ingest")
    assert lone.returncode == 2
    assert "--role ingest needs ENGAUGE_REDIS" in lone.stderr
    first = EngaugeServer(
        tmp_path / "first",
        {"ENGAUGE_REDIS": redis.url, "ENGAUGE_PARTITIONS": "4"},
        ("--role", "ingest"),
    )
    try:
        first.start()
        other = run_node(
            base_env(tmp_path / "other", {"ENGAUGE_REDIS": redis.url, "ENGAUGE_PARTITIONS": "8"}),
            "--role",
            "aggregate",
        )
        assert other.returncode == 2
        assert "set ENGAUGE_PARTITIONS=4" in other.stderr
    finally:
        stop_all([first])
    unreachable = run_node(
        base_env(tmp_path / "x", {"ENGAUGE_REDIS": "redis://127.0.0.1:1/0"}), "--role", "ingest"
    )
    assert unreachable.returncode == 2
    assert "ENGAUGE_REDIS=redis://127.0.0.1:1/0" in unreachable.stderr


def test_a_dashboard_node_streams_what_an_ingest_node_took(cluster: Cluster) -> None:
    """The live stream of a dashboard node carries an interaction sent to an ingest node:
    through Redis, an aggregate node's publication and the merge, within a few seconds."""
    ingest = cluster.node("ingest")
    aggregate = cluster.node("aggregate")
    dashboard = cluster.node("dashboard")
    assert wait_until(lambda: caught_up([aggregate]), TAKEOVER_SECONDS)
    headers = {"Authorization": f"Bearer {dashboard.token}"}
    with (
        httpx.Client(base_url=dashboard.url, timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", "/dashboard/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        stream = events(response.iter_lines())
        _, first = next(stream)
        assert isinstance(first, list)
        before = {row["id"]: row["total"] for row in first}["allTime"]
        sent = time.monotonic()
        ingest.send({"action": "live", "userID": "live-user"})
        for _, changed in stream:
            assert isinstance(changed, list)
            if {row["id"]: row["total"] for row in changed}.get("allTime") == before + 1:
                break
        waited = time.monotonic() - sent
    assert waited < 5
