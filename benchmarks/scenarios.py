"""The scenarios: the aggregator in process, and batch ingest through the real server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
import trio

from benchmarks.workload import interaction_dicts
from engauge.pipeline import Pipeline
from engauge.service import tune_garbage_collector
from engauge.snapshotter import Snapshotter
from engauge.store import snapshot as snapshots
from engauge.store.erasures import Erasures
from engauge.store.journal import Journal
from engauge.store.snapshot import Snapshot
from engauge.stream.aggregator import Aggregator
from engauge.stream.calendar import Calendar
from engauge.stream.interaction import Interaction
from engauge.stream.settings import Settings
from engauge.stream.validation import validate_interaction

ZONE = ZoneInfo("UTC")
tune_garbage_collector()  # as the server does
API_KEY = "benchmark-api-key"
BATCH_SIZES = (10, 100)
"""Smaller requests than the main batch scenario's, to show the cost per request."""
PASSWORD = "benchmark-password"


def aggregator(count: int = 100_000, batch: int = 1000) -> dict[str, Any]:
    """Validated interactions straight into the aggregator: its own throughput."""
    now = time.time()
    items = [
        validate_interaction(item, now=now, zone=ZONE)
        for item in interaction_dicts(count, start=now - count * 0.01)
    ]
    state = Aggregator(Calendar(ZONE), 1800.0, Settings())
    started = time.perf_counter()
    for offset in range(0, count, batch):
        state.apply(items[offset : offset + batch])
    state.flush()
    seconds = time.perf_counter() - started
    return {
        "interactions": count,
        "batch": batch,
        "seconds": round(seconds, 3),
        "interactionsPerSecond": round(count / seconds),
        "openSessions": len(state.sessions),
    }


def batch_ingest(batches: int = 100, size: int = 1000) -> dict[str, Any]:
    """``POST /api/interactions`` with ``size`` per request through the real server on one
    CPU, under ``ENGAUGE_FSYNC=everysec`` and ``always``, beside the floor of decoding the
    same bytes with msgspec and nothing else."""
    now = time.time()
    bodies = [
        httpx.Request("POST", "/", json=interaction_dicts(size, start=now - 3600, seed=n)).read()
        for n in range(batches)
    ]
    total = batches * size
    started = time.perf_counter()
    for body in bodies:
        msgspec.json.decode(body)
    floor = round(total / (time.perf_counter() - started))
    measured = {fsync: _post_all(bodies, fsync) for fsync in ("everysec", "always")}
    by_size = {}
    for per_request in BATCH_SIZES:
        smaller = [
            httpx.Request("POST", "/", json=chunk).read()
            for chunk in _chunks(interaction_dicts(total, start=now - 3600), per_request)
        ]
        by_size[str(per_request)] = round(total / _post_all(smaller, "everysec"))
    return {
        "requests": batches,
        "interactionsPerRequest": size,
        "decodeFloorPerSecond": floor,
        **{
            fsync: {
                "seconds": round(seconds, 3),
                "interactionsPerSecond": round(total / seconds),
                "ratioToDecodeFloor": round(total / seconds / floor, 3),
            }
            for fsync, seconds in measured.items()
        },
        "everysecPerSecondByBatchSize": by_size,
    }


def _chunks(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[offset : offset + size] for offset in range(0, len(items), size)]


def _post_all(bodies: list[bytes], fsync: str) -> float:
    """Seconds to post every body, one after another, to a fresh server."""
    with tempfile.TemporaryDirectory() as base, RunningServer(base, fsync, cpu=0) as url:
        headers = {"api-key": API_KEY, "content-type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            started = time.perf_counter()
            for body in bodies:
                client.post("/api/interactions", content=body).raise_for_status()
            return time.perf_counter() - started


def pinned(command: list[str], cpu: int) -> list[str]:
    """``command`` run on one CPU (``taskset``) where the machine has it and more than one CPU."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return command
    return ["taskset", "-c", str(cpu), *command]


class RunningServer:
    """The real server from this checkout on a free 127.0.0.1 port, stopped on exit."""

    def __init__(self, base: str, fsync: str, cpu: int | None = None) -> None:
        env = {
            **os.environ,
            "ENGAUGE_PORT": "0",
            "ENGAUGE_BASEPATH": base,
            "ENGAUGE_APIKEY": API_KEY,
            "ENGAUGE_PASSWORD": PASSWORD,
            "ENGAUGE_FSYNC": fsync,
            "ENGAUGE_TIMEZONE": "UTC",
        }
        command = [sys.executable, "-m", "engauge", "serve"]
        self.process = subprocess.Popen(
            command if cpu is None else pinned(command, cpu),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def __enter__(self) -> str:
        deadline = time.monotonic() + 30
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            found = re.search(r"listening on (\S+)", line)
            if found:
                return found.group(1)
        self.process.kill()
        raise RuntimeError("the server did not start within 30 s")

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def snapshot(open_sessions: int = 1_000_000, interactions: int = 100_000) -> dict[str, Any]:
    """A background snapshot of a state with ``open_sessions`` open sessions: how long the
    aggregator task is paused (capture + fork) and how long the whole write takes."""
    now = time.time()
    items = [
        validate_interaction(item, now=now, zone=ZONE)
        for item in interaction_dicts(interactions, start=now - interactions * 0.01)
    ]
    state = Aggregator(Calendar(ZONE), 1800.0, Settings())
    state.apply(items)
    template = next(iter(state.sessions.open.values()))
    state.sessions.restore(
        {("bench", f"user-{n}"): msgspec.structs.replace(template) for n in range(open_sessions)}
    )
    state.flush()  # as the once-a-second tick does; the pause measured is the snapshot's own
    with tempfile.TemporaryDirectory() as base:
        journal = Journal.recover(Path(base) / "journal", lambda _: None)
        pipeline = Pipeline(journal, state, "off")
        snapshotter = Snapshotter(
            pipeline,
            directory=Path(base) / "snapshots",
            archive=Path(base) / "archive",
            timezone="UTC",
            week_start=0,
            every=60,
            erasures=Erasures(Path(base), API_KEY),
        )
        paused, total = trio.run(_timed_snapshot, snapshotter)
        size = sum(path.stat().st_size for path in (Path(base) / "snapshots").iterdir())
        journal.close()
    return {
        "openSessions": len(state.sessions),
        "ingestPauseMs": round(paused * 1000, 1),
        "snapshotSeconds": round(total, 2),
        "snapshotBytes": size,
    }


async def _timed_snapshot(snapshotter: Snapshotter) -> tuple[float, float]:
    started = time.perf_counter()
    paused = await snapshotter.take_in_background()
    return paused, time.perf_counter() - started


def recovery(count: int = 1_000_000) -> dict[str, Any]:
    """Start-up from a journal of ``count`` interactions and no snapshot, and from a snapshot
    of those plus a journal tail of a tenth as many."""
    now = time.time()
    dicts = interaction_dicts(min(count, 100_000), start=now - count * 0.01)
    tail = max(1, count // 10)
    with tempfile.TemporaryDirectory() as base:
        directory = Path(base) / "journal"
        journal = Journal.recover(directory, lambda _: None)
        _append(journal, dicts, 0, count, now)
        covered = journal.position
        journal_bytes = sum(path.stat().st_size for path in directory.glob("*.log"))
        _append(journal, dicts, count, tail, now)
        journal.close()

        state = Aggregator(Calendar(ZONE), 1800.0, Settings())
        started = time.perf_counter()
        Journal.recover(directory, state.apply).close()
        state.flush()
        from_journal = time.perf_counter() - started

        state = Aggregator(Calendar(ZONE), 1800.0, Settings())
        Journal.recover(directory, _first(count, state.apply)).close()
        state.flush()
        snapshots.write(Path(base) / "snapshots", Snapshot(covered, "UTC", 0, state.state()))
        state = Aggregator(Calendar(ZONE), 1800.0, Settings())
        started = time.perf_counter()
        newest = snapshots.load_newest(Path(base) / "snapshots")
        assert newest is not None
        state.restore(newest.state)
        Journal.recover(directory, state.apply, after=newest.position).close()
        state.flush()
        from_snapshot = time.perf_counter() - started
    return {
        "interactions": count,
        "seconds": round(from_journal, 2),
        "secondsPerMillion": round(from_journal * 1_000_000 / (count + tail), 2),
        "journalBytesPerInteraction": round(journal_bytes / count, 1),
        "fromSnapshotPlusTail": {"tail": tail, "seconds": round(from_snapshot, 2)},
    }


def _append(
    journal: Journal, dicts: list[dict[str, Any]], first: int, count: int, now: float
) -> None:
    for offset in range(first, first + count, 1000):
        size = min(1000, first + count - offset)
        journal.append(
            [
                validate_interaction(dicts[(offset + k) % len(dicts)], now=now, zone=ZONE)
                for k in range(size)
            ]
        )


Apply = Callable[[list[Interaction]], None]


def _first(count: int, apply: Apply) -> Apply:
    """``apply`` for the first ``count`` interactions replayed, nothing after them."""
    seen = 0

    def apply_first(batch: list[Interaction]) -> None:
        nonlocal seen
        if seen < count:
            apply(batch[: count - seen])
        seen += len(batch)

    return apply_first
