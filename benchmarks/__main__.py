"""Benchmark runner: each scenario is bounded, targets only 127.0.0.1 and stops by itself.

``python -m benchmarks`` runs every scenario; ``python -m benchmarks aggregator`` one.
The JSON document is printed and written to ``benchmarks/results/<date>-<scenario>.json``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.scenarios import aggregator, batch_ingest, recovery, snapshot
from benchmarks.screen import screen

SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "aggregator": aggregator,
    "batch-ingest": batch_ingest,
    "snapshot": snapshot,
    "recovery": recovery,
    "screen": screen,
}
RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        print(
            f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}", file=sys.stderr
        )
        return 2
    RESULTS.mkdir(exist_ok=True)
    today = datetime.date.today().isoformat()
    for name in names or list(SCENARIOS):
        document = {"scenario": name, "date": today, "machine": machine(), **SCENARIOS[name]()}
        text = json.dumps(document, indent=2)
        print(text)
        (RESULTS / f"{today}-{name}.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
