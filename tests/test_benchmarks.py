"""Every benchmark scenario runs in a tiny size and writes valid JSON (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "single-ingest": ("anchor", "engauge", "requestsRatio"),
    "aggregator": ("interactionsPerSecond",),
    "batch-ingest": ("decodeFloorPerSecond", "everysec", "always"),
    "screen": ("ackToScreenMs", "ackToStreamEventMs", "firstPaintMs"),
    "memory": ("openSessions", "distinctPropertyValues"),
    "snapshot": ("ingestPauseMs", "snapshotBytes"),
    "recovery": ("secondsPerMillion", "fromSnapshotPlusTail"),
    "cluster": ("aggregators", "ingestPerNode", "ingestAppendfsyncAlways", "note"),
}


def test_every_scenario_runs_in_a_smoke_size(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    # <date>-<scenario>.json, the date being YYYY-MM-DD
    written = {path.name[11:].removesuffix(".json"): path for path in tmp_path.iterdir()}
    assert set(written) == set(SCENARIOS)
    for name, fields in SCENARIOS.items():
        document = json.loads(written[name].read_text())
        assert document["scenario"] == name
        assert document["machine"]["cpus"] >= 1
        if "skipped" in document:  # a Debian program could not be installed here
            assert document["skipped"]
            continue
        for field in fields:
            assert field in document, (name, field)
    load = json.loads(written["single-ingest"].read_text())
    if "skipped" not in load:
        assert load["engauge"]["non2xx"] == 0
        assert load["engauge"]["requestsPerSecond"] > 0
