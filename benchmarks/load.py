"""Single-interaction ``POST /api/interaction`` under load from wrk, beside a bare
hypercorn-trio app answering ``202`` (``benchmarks/anchor.py``) measured the same way.

The server runs on CPU 0 and wrk on CPU 1 (``taskset``), 50 keep-alive connections.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.scenarios import RunningServer, pinned
from tests.debian import WRK, install_wrk
from tests.redis_server import free_port

SCRIPT = Path(__file__).parent / "post_interaction.lua"
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def single_ingest(seconds: int = 10, connections: int = 50) -> dict[str, Any]:
    reason = install_wrk()
    if reason is not None:
        return {"skipped": reason}
    with _anchor() as url:
        anchor = _wrk(url, seconds, connections)
    with tempfile.TemporaryDirectory() as base, RunningServer(base, "everysec", cpu=0) as url:
        engauge = _wrk(url, seconds, connections)
    return {
        "seconds": seconds,
        "connections": connections,
        "anchor": anchor,
        "engauge": engauge,
        "requestsRatio": round(engauge["requestsPerSecond"] / anchor["requestsPerSecond"], 2),
        "p99Ratio": round(engauge["latencyMs"]["p99"] / anchor["latencyMs"]["p99"], 2),
    }


@contextmanager
def _anchor() -> Iterator[str]:
    port = free_port()
    command = pinned([sys.executable, "-m", "benchmarks.anchor", str(port)], cpu=0)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wrk(url: str, seconds: int, connections: int) -> dict[str, Any]:
    command = pinned(
        [
            str(WRK),
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(SCRIPT),
            f"{url}/api/interaction",
        ],
        cpu=1,
    )
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests per second, latency percentiles (ms) and errors from wrk's report."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise RuntimeError(f"wrk printed no request rate:\n{output}")
    latency = {
        f"p{percent}": round(float(value) * UNITS[unit], 2)
        for percent, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    wrong = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.+)", output)
    return {
        "requestsPerSecond": round(float(rate.group(1))),
        "latencyMs": latency,
        "non2xx": int(wrong.group(1)) if wrong else 0,
        "socketErrors": errors.group(1) if errors else None,
    }
