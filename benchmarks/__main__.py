"""Benchmark runner: each scenario is bounded, targets only 127.0.0.1 and stops by itself.

``python -m benchmarks`` runs every scenario; ``python -m benchmarks aggregator`` one;
``--smoke`` runs them in a tiny size (seconds) to check they work, and ``--results DIR``
writes elsewhere. Each JSON document is printed and written to
``<results>/<date>-<scenario>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.cluster import cluster
from benchmarks.load import single_ingest
from benchmarks.memory import memory
from benchmarks.scenarios import aggregator, batch_ingest, recovery, snapshot
from benchmarks.screen import screen

SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "single-ingest": single_ingest,
    "aggregator": aggregator,
    "batch-ingest": batch_ingest,
    "screen": screen,
    "memory": memory,
    "snapshot": snapshot,
    "recovery": recovery,
    "cluster": cluster,
}
SMOKE: dict[str, dict[str, Any]] = {
    "single-ingest": {"seconds": 1, "connections": 5},
    "aggregator": {"count": 2000},
    "batch-ingest": {"batches": 3, "size": 100},
    "screen": {"samples": 3},
    "memory": {"sessions": 2000, "values": 2000},
    "snapshot": {"open_sessions": 2000, "interactions": 2000},
    "recovery": {"count": 3000},
    "cluster": {
        "interactions": 5000,
        "aggregators": (1, 2),
        "requests": 5,
        "ingest_nodes": (1,),
        "deadline": 30,
    },
}
RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument("--smoke", action="store_true", help="a tiny size of each scenario")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write JSON")
    options = parser.parse_args(arguments)
    unknown = [name for name in options.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    options.results.mkdir(parents=True, exist_ok=True)
    today = datetime.date.today().isoformat()
    for name in options.scenarios or list(SCENARIOS):
        result = SCENARIOS[name](**(SMOKE[name] if options.smoke else {}))
        document = {"scenario": name, "date": today, "machine": machine(), **result}
        text = json.dumps(document, indent=2)
        print(text, flush=True)
        (options.results / f"{today}-{name}.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
