"""The scenarios: the aggregator in process, and batch ingest through the real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from benchmarks.workload import interaction_dicts
from engauge.stream.aggregator import Aggregator
from engauge.stream.calendar import Calendar
from engauge.stream.settings import Settings
from engauge.stream.validation import validate_interaction

ZONE = ZoneInfo("UTC")
API_KEY = "benchmark-api-key"


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
            "ENGAUGE_PASSWORD": "benchmark-password",
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
