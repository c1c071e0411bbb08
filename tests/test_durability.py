"""Snapshots on the real process: final snapshot at SIGTERM, recovery after kill -9,
fall-back from a damaged snapshot, refusal of a newer format."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import EngaugeServer, base_env, wait_until

from engauge.store import snapshot as snapshots

INTERVALS = ("allTime", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly")


def views(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "action": "view",
            "userID": f"{prefix}{n % 7}",
            "originType": "page",
            "originID": f"/{n % 3}",
        }
        for n in range(count)
    ]


def summaries(server: EngaugeServer) -> dict[str, Any]:
    return {interval: server.summary(interval) for interval in INTERVALS}


def snapshot_files(server: EngaugeServer) -> list[Path]:
    return snapshots.snapshot_files(server.basepath / "snapshots")


def test_sigterm_writes_a_final_snapshot_and_restart_replays_nothing(
    start_server: Callable[..., EngaugeServer],
) -> None:
    server = start_server()
    server.send(*views(40, "a"))
    server.settled_total()
    before = summaries(server)
    server.restart()
    assert snapshot_files(server), "no snapshot after SIGTERM"
    assert "and 0 from the journal" in server.stderr()
    assert summaries(server) == before


def test_kill_9_recovers_from_snapshot_and_journal_tail(
    start_server: Callable[..., EngaugeServer],
) -> None:
    server = start_server(env={"ENGAUGE_SNAPSHOTEVERY": "1"})
    server.send(*views(30, "b"))
    assert wait_until(lambda: bool(snapshot_files(server)), timeout=10)
    server.send(*views(20, "c"))
    server.kill()
    server.start()
    assert server.settled_total() == 50
    assert "from a snapshot" in server.stderr()


def test_damaged_newest_snapshot_falls_back_to_the_older_one(
    start_server: Callable[..., EngaugeServer],
) -> None:
    server = start_server()
    server.send(*views(10, "d"))
    server.restart()
    server.send(*views(15, "e"))
    assert server.stop() == 0
    files = snapshot_files(server)
    assert len(files) == 2
    newest = files[-1]
    newest.write_bytes(newest.read_bytes()[:-7])
    server.start()
    assert server.settled_total() == 25
    assert f"snapshot {newest.name} skipped" in server.stderr()


def test_a_newer_snapshot_format_stops_start_up(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "snapshots"
    directory.mkdir(parents=True)
    header = snapshots.HEADER.pack(snapshots.MAGIC, snapshots.FORMAT + 1, 0)
    (directory / "00000001-000000000000.snapshot").write_bytes(header + b"payload")
    finished = subprocess.run(
        [sys.executable, "-m", "engauge", "serve"],
        env=base_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode == 2
    assert "newer than this Engauge reads" in finished.stderr
