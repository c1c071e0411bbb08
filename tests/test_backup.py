"""``engauge backup`` of a running server and ``engauge restore`` into a new base path."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import EngaugeServer, days_ago, run_engauge


def mix(count: int, label: str) -> list[dict[str, Any]]:
    return [
        {
            "action": ("view", "click", "conversion")[n % 3],
            "userID": f"{label}-{n % 17}",
            "originType": "page",
            "originID": f"/p/{n % 5}",
            "deviceType": ("phone", "desktop")[n % 2],
            "timestamp": days_ago(n % 9, hour=8 + n % 9).isoformat(),
            "properties": {"amount": n % 7, "plan": ("free", "pro")[n % 2]},
        }
        for n in range(count)
    ]


def everything(server: EngaugeServer) -> dict[str, Any]:
    """Every summary of every enabled interval, and the breakdown lists."""
    answers: dict[str, Any] = {}
    for bucket in server.get("/dashboard/summaries"):
        answers[bucket["id"]] = server.summary(bucket["interval"])
    for kind in ("endpoint", "origin", "entity", "properties"):
        answers[kind] = server.get(f"/dashboard/{kind}", limit=1000)
    return answers


def test_a_backup_restores_to_identical_summaries(
    start_server: Callable[..., EngaugeServer], tmp_path: Path
) -> None:
    original = start_server(env={"ENGAUGE_SNAPSHOTEVERY": "1"})
    original.send(*mix(300, "before"))
    time.sleep(1.5)  # a snapshot covers those; what follows is the journal's tail
    original.send(*mix(200, "after"))
    assert original.settled_total() == 500
    erased = original.dash("DELETE", "/dashboard/users", params={"userID": "after-3"})
    assert erased.status_code == 200
    time.sleep(1.5)  # the ended session reaches a snapshot (it is not journaled)
    copied = run_engauge(original.basepath, "backup", str(tmp_path / "backup"))
    assert copied.returncode == 0, copied.stderr
    assert "snapshot 0" in copied.stdout
    restored_base = tmp_path / "restored"
    assert run_engauge(restored_base, "restore", str(tmp_path / "backup")).returncode == 0
    restored = start_server(basepath=restored_base)
    assert restored.settled_total() == 500
    assert everything(restored) == everything(original)
    exported = restored.dash("GET", "/dashboard/export/interactions").text
    assert '"after-3"' not in exported and '"after-4"' in exported  # the erasure came along


def test_a_backup_while_ingesting_holds_what_was_acknowledged_before_it(
    start_server: Callable[..., EngaugeServer], tmp_path: Path
) -> None:
    original = start_server(env={"ENGAUGE_SNAPSHOTEVERY": "1"})
    original.send(*mix(100, "first"))
    acknowledged = [100]
    stop = threading.Event()

    def ingest() -> None:
        number = 0
        while not stop.is_set():
            original.send(*mix(50, f"busy{number}"))
            acknowledged.append(50)
            number += 1

    sender = threading.Thread(target=ingest)
    sender.start()
    try:
        time.sleep(1.2)
        before = sum(acknowledged)
        copied = run_engauge(original.basepath, "backup", str(tmp_path / "backup"))
        time.sleep(0.5)
    finally:
        stop.set()
        sender.join(timeout=30)
    after = sum(acknowledged)
    assert copied.returncode == 0, copied.stderr
    restoring = run_engauge(tmp_path / "restored", "restore", str(tmp_path / "backup"))
    assert restoring.returncode == 0
    restored = start_server(basepath=tmp_path / "restored")
    assert before <= restored.settled_total() <= after


def test_backup_and_restore_refuse_a_directory_in_use(
    server: EngaugeServer, tmp_path: Path
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    refused = run_engauge(server.basepath, "backup", str(busy))
    assert refused.returncode == 1
    assert "not empty" in refused.stderr
    refused = run_engauge(tmp_path / "new", "restore", str(busy))
    assert refused.returncode == 1
    assert "not an Engauge backup" in refused.stderr
