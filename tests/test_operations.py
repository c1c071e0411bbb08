"""``GET /metrics`` read with prometheus-client's own parser, and ``GET /health/ready``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import APIKEY, JWT_KEY, PASSWORD, EngaugeServer, base_env, wait_until
from prometheus_client.parser import text_string_to_metric_families
from redis_server import free_port

TOKEN = "metrics-token-0123456789"


def scrape(server: EngaugeServer, token: str | None = TOKEN) -> dict[tuple[str, tuple], float]:
    """Every sample of ``/metrics``: (name, sorted labels) → value."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = server.request("GET", "/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.fixture
def observed(start_server: Callable[..., EngaugeServer]) -> EngaugeServer:
    return start_server(env={"ENGAUGE_METRICSTOKEN": TOKEN})


def test_metrics_move_with_real_traffic(observed: EngaugeServer) -> None:
    before = scrape(observed)
    observed.send(
        {"action": "view", "userID": "m1", "id": "once"},
        {"action": "view", "userID": "m2"},
    )
    observed.send({"action": "view", "userID": "m1", "id": "once"})  # a retry
    refused = observed.post_api("/api/interactions", [{"action": 5, "userID": "x"}])
    assert refused.status_code == 400
    assert observed.request("POST", "/api/interaction", json={}).status_code == 401
    assert observed.settled_total() == 2
    after = scrape(observed)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("engauge_interactions_accepted_total", route="/api/interactions") == 3
    assert grew("engauge_interactions_rejected_total", reason="invalid") == 1
    assert grew("engauge_interactions_rejected_total", reason="bad_request") == 1
    assert grew("engauge_interactions_rejected_total", reason="unauthorized") == 1
    assert grew("engauge_interactions_deduplicated_total") == 1
    assert grew("engauge_interactions_counted_total") == 2
    assert after[("engauge_open_sessions", ())] == 2
    assert after[("engauge_aggregator_queue_depth", ())] == 0
    assert after[("engauge_journal_bytes", ())] > 0
    assert grew("engauge_request_duration_seconds_count", route="/api/interactions") == 3
    assert ("engauge_sse_subscribers", ()) in after
    assert ("engauge_snapshot_last_timestamp_seconds", ()) in after


def test_metrics_report_fsyncs_and_snapshots(start_server: Callable[..., EngaugeServer]) -> None:
    server = start_server(
        env={"ENGAUGE_FSYNC": "always", "ENGAUGE_SNAPSHOTEVERY": "1", "ENGAUGE_METRICSTOKEN": TOKEN}
    )
    server.send({"action": "view", "userID": "s1"})
    assert wait_until(
        lambda: scrape(server)[("engauge_snapshot_last_size_bytes", ())] > 0, timeout=10
    )
    samples = scrape(server)
    assert samples[("engauge_journal_fsync_duration_seconds_count", ())] >= 1
    assert samples[("engauge_snapshot_last_timestamp_seconds", ())] > 1.7e9


def test_metrics_need_the_token_when_one_is_set(observed: EngaugeServer) -> None:
    assert observed.request("GET", "/metrics").status_code == 401
    wrong = observed.request("GET", "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert APIKEY not in observed.request("GET", "/metrics").text


def test_metrics_are_open_without_a_token(server: EngaugeServer) -> None:
    assert ("engauge_open_sessions", ()) in scrape(server, token=None)


def test_route_labels_stay_few_whatever_paths_clients_send(observed: EngaugeServer) -> None:
    for number in range(30):
        observed.request("GET", f"/no/such/path/{number}")
        observed.request("GET", f"/dashboard/origin/{number}")
    routes = {
        dict(labels).get("route")
        for name, labels in scrape(observed)
        if name == "engauge_request_duration_seconds_count"
    }
    assert "other" in routes and "/dashboard/origin" in routes
    assert len(routes) < 15


def test_ready_until_the_journal_cannot_be_written(
    start_server: Callable[..., EngaugeServer],
) -> None:
    """A file size limit on the running server makes journal writes fail as a full disk does."""
    server = start_server()
    ready = server.request("GET", "/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True}
    assert server.process is not None
    subprocess.run(
        ["prlimit", f"--pid={server.process.pid}", "--fsize=65536:65536"], check=True
    )
    pad = {"pad": "x" * 900}
    big = [{"action": "fill", "userID": f"f{n}", "properties": pad} for n in range(200)]
    statuses = {server.post_api("/api/interactions", big).status_code for _ in range(5)}
    assert 503 in statuses
    answer = server.request("GET", "/health/ready")
    assert answer.status_code == 503
    assert "journal" in answer.json()["reason"]
    assert server.request("GET", "/health").text == "alive"
    server.kill()  # its final snapshot could not be written either


def test_json_logs_parse_and_hold_no_secret(start_server: Callable[..., EngaugeServer]) -> None:
    public, origin = "public-log-key-0123456789", "http://127.0.0.1:1"
    server = start_server(
        env={
            "ENGAUGE_LOGFORMAT": "json",
            "ENGAUGE_PUBLICKEY": public,
            "ENGAUGE_CORS": origin,
            "ENGAUGE_METRICSTOKEN": TOKEN,
        }
    )
    token = server.token  # a login: the password in a body
    server.get("/dashboard/summaries")  # the token in a header
    server.send({"action": "view", "userID": "logged"})  # the API key in a header
    beacon = server.request(
        "POST", f"/api/interactions?key={public}", json=[{"action": "view", "userID": "b"}],
        headers={"origin": origin},
    )
    assert beacon.status_code == 202
    server.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert server.stop() == 0
    lines = [line for line in server.stderr().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)
    messages = [record["message"] for record in records]
    assert any('"POST /api/interactions 1.1" 202' in message for message in messages)
    assert any("stopped" in message for message in messages)
    text = "\n".join(lines)
    for secret in (APIKEY, PASSWORD, JWT_KEY, token, public, TOKEN):
        assert secret not in text


def archived(server: EngaugeServer) -> list[Path]:
    return sorted((server.basepath / "archive").glob("*.log"))


def test_raw_interactions_past_their_retention_leave_the_archive(
    start_server: Callable[..., EngaugeServer],
) -> None:
    """Archived segments aged by a clock jump (their times set 400 days back) are dropped
    once the retention setting says so, without a restart."""
    server = start_server(env={"ENGAUGE_SNAPSHOTEVERY": "1"})
    for round_ in range(4):  # each snapshot rolls the journal; two retire what they cover
        server.send({"action": "old", "userID": f"r{round_}"})
        time.sleep(1.3)
    assert wait_until(lambda: len(archived(server)) >= 1, timeout=10)
    server.dash("PUT", "/dashboard/settings", json={"retention": {"interactions": 1000}})
    long_ago = time.time() - 400 * 86_400
    for path in archived(server):
        os.utime(path, (long_ago, long_ago))
    time.sleep(2.5)  # two retention passes: 1,000 days keeps them
    assert archived(server)
    changed = server.dash("PUT", "/dashboard/settings", json={"retention": {"interactions": 30}})
    assert changed.json()["retention"]["interactions"] == 30
    assert wait_until(
        lambda: all(path.stat().st_mtime > long_ago + 1 for path in archived(server)),
        timeout=10,
    )
    exported = server.dash("GET", "/dashboard/export/interactions").text
    assert '"r0"' not in exported
    assert server.total() == 4  # the statistics keep counting them


def test_erasure_removes_a_person_from_export_and_archive_and_survives_restart(
    start_server: Callable[..., EngaugeServer],
) -> None:
    server = start_server(env={"ENGAUGE_SNAPSHOTEVERY": "1"})
    for round_ in range(4):
        server.send(
            {"action": "view", "userID": "victim", "userType": "member", "id": f"v{round_}"},
            {"action": "view", "userID": "bystander", "userType": "member"},
        )
        time.sleep(1.3)
    assert wait_until(lambda: len(archived(server)) >= 1, timeout=10)
    total = server.settled_total()
    assert server.dash("DELETE", "/dashboard/users").status_code == 400
    answer = server.dash("DELETE", "/dashboard/users", params={
        "userID": "victim", "userType": "member"})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["archivedInteractionsRemoved"] >= 1
    assert report["openSessionEnded"] is True

    def exported() -> str:
        return str(server.dash("GET", "/dashboard/export/interactions").text)

    assert '"victim"' not in exported() and '"bystander"' in exported()
    assert server.total() == total  # the counts stay
    assert all(b"victim" not in path.read_bytes() for path in archived(server))
    server.restart()
    assert '"victim"' not in exported() and '"bystander"' in exported()
    server.send({"action": "after", "userID": "bystander"})
    # Segments still needed at the erasure are scrubbed when they are archived later.
    assert wait_until(
        lambda: all(b"victim" not in path.read_bytes() for path in archived(server))
        and len(archived(server)) >= 2,
        timeout=15,
    )
    assert "victim" not in (server.basepath / "erasures.json").read_text()


def test_ready_only_once_recovery_has_finished(
    start_server: Callable[..., EngaugeServer], tmp_path: Path
) -> None:
    """While a large journal is replayed the port already answers: alive, not ready, and
    every other request 503 with Retry-After."""
    port = free_port()
    server = start_server(env={"ENGAUGE_SNAPSHOTEVERY": "3600", "ENGAUGE_PORT": str(port)})
    batch = [
        {"action": "view", "userID": f"r{n % 5000}", "properties": {"n": n, "tag": f"t{n % 7}"}}
        for n in range(1000)
    ]
    for _ in range(200):
        server.send(*batch)
    server.kill()  # no final snapshot: the next start replays all 200,000
    process = subprocess.Popen(
        [sys.executable, "-m", "engauge", "serve"],
        env=base_env(server.basepath, {"ENGAUGE_PORT": str(port)}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    recovering = 0
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    ready = client.get("/health/ready")
                except httpx.TransportError:
                    time.sleep(0.02)
                    continue
                if ready.status_code == 200:
                    break
                assert ready.json() == {"ready": False, "reason": "recovering the journal"}
                recovering += 1
                assert client.get("/health").text == "alive"
                refused = client.post("/api/interaction", json={}, headers={"api-key": APIKEY})
                if refused.status_code == 503:
                    assert refused.headers["retry-after"] == "5"
                else:  # recovery finished in between
                    assert client.get("/health/ready").status_code == 200
            assert ready.status_code == 200
        assert recovering > 0, "no request arrived while the journal was replayed"
    finally:
        process.terminate()
        process.wait(timeout=30)
