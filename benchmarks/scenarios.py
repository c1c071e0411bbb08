"""The scenarios: the aggregator in process, and batch ingest through the real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import httpx
import trio

from benchmarks.workload import interaction_dicts
from engauge.pipeline import Pipeline
from engauge.service import tune_garbage_collector
from engauge.snapshotter import Snapshotter
from engauge.store.journal import Journal
from engauge.stream.aggregator import Aggregator
from engauge.stream.calendar import Calendar
from engauge.stream.settings import Settings
from engauge.stream.validation import validate_interaction

ZONE = ZoneInfo("UTC")
tune_garbage_collector()  # as the server does
API_KEY = "benchmark-api-key"
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


def batch_ingest(batches: int = 100, size: int = 1000, fsync: str = "everysec") -> dict[str, Any]:
    """``POST /api/interactions`` with 1,000 per request through the real server."""
    now = time.time()
    bodies = [
        httpx.Request("POST", "/", json=interaction_dicts(size, start=now - 3600, seed=n)).read()
        for n in range(batches)
    ]
    with tempfile.TemporaryDirectory() as base, RunningServer(base, fsync) as url:
        headers = {"api-key": API_KEY, "content-type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            started = time.perf_counter()
            for body in bodies:
                response = client.post("/api/interactions", content=body)
                response.raise_for_status()
            seconds = time.perf_counter() - started
    total = batches * size
    return {
        "fsync": fsync,
        "requests": batches,
        "interactionsPerRequest": size,
        "seconds": round(seconds, 3),
        "interactionsPerSecond": round(total / seconds),
    }


class RunningServer:
    """The real server from this checkout on a free 127.0.0.1 port, stopped on exit."""

    def __init__(self, base: str, fsync: str) -> None:
        env = {
            **os.environ,
            "ENGAUGE_PORT": "0",
            "ENGAUGE_BASEPATH": base,
            "ENGAUGE_APIKEY": API_KEY,
            "ENGAUGE_PASSWORD": PASSWORD,
            "ENGAUGE_FSYNC": fsync,
            "ENGAUGE_TIMEZONE": "UTC",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engauge", "serve"],
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
        {("bench", f"user-{n}"): attrs.evolve(template) for n in range(open_sessions)}
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
    """Start-up from a journal of ``count`` interactions and no snapshot."""
    now = time.time()
    dicts = interaction_dicts(min(count, 100_000), start=now - count * 0.01)
    with tempfile.TemporaryDirectory() as base:
        journal = Journal.recover(Path(base), lambda _: None)
        for offset in range(0, count, 1000):
            batch = [
                validate_interaction(dicts[(offset + k) % len(dicts)], now=now, zone=ZONE)
                for k in range(1000)
            ]
            journal.append(batch)
        journal.close()
        journal_bytes = sum(path.stat().st_size for path in Path(base).glob("*.log"))
        state = Aggregator(Calendar(ZONE), 1800.0, Settings())
        started = time.perf_counter()
        Journal.recover(Path(base), state.apply).close()
        state.flush()
        seconds = time.perf_counter() - started
    return {
        "interactions": count,
        "seconds": round(seconds, 2),
        "secondsPerMillion": round(seconds * 1_000_000 / count, 2),
        "journalBytesPerInteraction": round(journal_bytes / count, 1),
    }
