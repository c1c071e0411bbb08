"""``python -m fuzz [TARGET ...] [--seconds N] [--jobs N]``: each target (all by default)
under atheris for ``N`` seconds, in its own process, ``--jobs`` at a time.

Prints ``{target: {"status", "executions", "seconds", "artifact"}}`` as JSON (``seconds``
as measured, start-up included) and exits 1 when a target failed: ``crash`` (an exception
that is not the reader's clean error, or a broken invariant), ``hang`` (one input ran
longer than HANG_SECONDS) or ``out of memory``. The failing input is written under
``--artifacts``, and libFuzzer's account of the failure goes to stderr. Inputs the
fuzzer finds go to a temporary directory, never into ``corpus/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
HANG_SECONDS = 5
RSS_LIMIT_MB = 2048
SEED = 1
"""libFuzzer's random seed, fixed so that a run is as repeatable as a timed run can be."""
FAILURES = {"ERROR: libFuzzer: timeout": "hang", "ERROR: libFuzzer: out-of-memory": "out of memory"}
OUTPUT_SHOWN = 8000
"""How much of a failed target's report goes to stderr: the traceback and the input."""


def main() -> None:
    parser = _parser()
    arguments = parser.parse_args()
    unknown = set(arguments.targets) - set(TARGETS)
    if unknown:
        parser.error(f"no target {', '.join(sorted(unknown))}")
    names = arguments.targets or list(TARGETS)
    arguments.artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="engauge-fuzz-") as scratch:

        def run(name: str) -> dict[str, Any]:
            return run_target(name, arguments.seconds, Path(scratch), arguments.artifacts)

        with ThreadPoolExecutor(arguments.jobs) as pool:
            results = dict(zip(names, pool.map(run, names), strict=True))
    print(json.dumps(results, indent=2))
    sys.exit(0 if all(result["status"] == "ok" for result in results.values()) else 1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument(
        "targets", nargs="*", metavar="TARGET", help=f"one of {', '.join(TARGETS)} (default: all)"
    )
    parser.add_argument("--seconds", type=int, default=60, help="time per target")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="at a time")
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=Path(tempfile.gettempdir()) / "engauge-fuzz-artifacts",
        help="where a failing input is written",
    )
    return parser


def run_target(name: str, seconds: int, scratch: Path, artifacts: Path) -> dict[str, Any]:
    """One target in a subprocess; its status, executions, time and failing input."""
    found = scratch / name  # libFuzzer writes new inputs into the first directory
    found.mkdir()
    command = [
        sys.executable, "-m", "fuzz.engine", name,
        f"-max_total_time={seconds}",
        f"-timeout={HANG_SECONDS}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-seed={SEED}",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/{name}-",
        str(found),
        str(CORPUS / name),
    ]  # fmt: skip
    started = time.monotonic()
    # The grace covers start-up and one last input; a hang itself ends at HANG_SECONDS.
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    output = done.stdout + done.stderr
    status = "ok" if done.returncode == 0 else _failure(output)
    if status != "ok":
        print(f"--- {name}: {status} ---\n{_report(output)}", file=sys.stderr)
    return {
        "status": status,
        "executions": _stat(output, "number_of_executed_units"),
        "seconds": round(time.monotonic() - started, 1),
        "artifact": _artifact(output),
    }


def _report(output: str) -> str:
    """libFuzzer's account of a failure: from the Python traceback (or libFuzzer's error)
    to the end, without the progress lines before it."""
    starts = [output.find(mark) for mark in ("=== Uncaught Python exception", "ERROR: libFuzzer")]
    start = min((found for found in starts if found >= 0), default=max(0, len(output) - 4000))
    return output[start : start + OUTPUT_SHOWN]


def _failure(output: str) -> str:
    return next((kind for line, kind in FAILURES.items() if line in output), "crash")


def _stat(output: str, name: str) -> int:
    found = re.search(rf"^stat::{name}:\s*(\d+)", output, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _artifact(output: str) -> str | None:
    found = re.search(r"Test unit written to (\S+)", output)
    return found.group(1) if found else None


if __name__ == "__main__":
    main()
