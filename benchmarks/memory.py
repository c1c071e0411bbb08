"""Memory: resident set size per open session, and under a flood of distinct property values.

Each measurement runs in a fresh process (``python -m benchmarks.memory KIND COUNT``), so
nothing of an earlier scenario is counted. Interactions are generated, validated and applied
in chunks and then dropped, so what grows is the aggregator's state alone.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from engauge.stream.aggregator import Aggregator
from engauge.stream.calendar import Calendar
from engauge.stream.settings import Settings
from engauge.stream.validation import validate_interaction

ZONE = ZoneInfo("UTC")
CHUNK = 10_000
PAGE = os.sysconf("SC_PAGE_SIZE")


def memory(sessions: int = 1_000_000, values: int = 1_000_000) -> dict[str, Any]:
    return {
        "openSessions": _child("sessions", sessions),
        "distinctPropertyValues": _child("properties", values),
    }


def _child(kind: str, count: int) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", kind, str(count)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


Generate = Callable[[int, int], Iterator[dict[str, Any]]]
"""``(offset, size)`` to the interactions numbered ``offset`` to ``offset + size``."""


def _apply(state: Aggregator, dicts: Generate, count: int) -> None:
    now = time.time()
    for offset in range(0, count, CHUNK):
        items = [
            validate_interaction(item, now=now, zone=ZONE)
            for item in dicts(offset, min(CHUNK, count - offset))
        ]
        state.apply(items)
    state.flush()


def open_sessions(count: int) -> dict[str, Any]:
    """``count`` users with one interaction each: ``count`` open sessions."""
    now = time.time()

    def dicts(offset: int, size: int) -> Iterator[dict[str, Any]]:
        for number in range(offset, offset + size):
            yield {
                "action": "view",
                "userID": f"user-{number}",
                "originType": "page",
                "originID": f"/page/{number % 200}",
                "deviceType": "mobile" if number % 2 else "desktop",
                "timestamp": now - 60,
            }

    state = Aggregator(Calendar(ZONE), 1800.0, Settings())
    before = rss()
    _apply(state, dicts, count)
    grown = rss() - before
    return {
        "openSessions": len(state.sessions),
        "rssGrowthBytes": grown,
        "bytesPerOpenSession": round(grown / max(1, len(state.sessions))),
    }


def property_values(count: int) -> dict[str, Any]:
    """``count`` interactions, each with a property value never seen before, from 1,000
    users: the state must stay bounded (distributions keep their most frequent values)."""
    now = time.time()

    def dicts(offset: int, size: int) -> Iterator[dict[str, Any]]:
        for number in range(offset, offset + size):
            yield {
                "action": "search",
                "userID": f"searcher-{number % 1000}",
                "timestamp": now - 60,
                "properties": {"query": f"query number {number}"},
            }

    state = Aggregator(Calendar(ZONE), 1800.0, Settings())
    before = rss()
    tenth = count // 10
    _apply(state, dicts, tenth)
    at_tenth = rss() - before
    _apply(state, lambda offset, size: dicts(tenth + offset, size), count - tenth)
    at_all = rss() - before
    return {
        "values": count,
        "rssGrowthBytesAtTenth": at_tenth,
        "rssGrowthBytes": at_all,
        "growthFromTenthToAll": round(at_all / max(1, at_tenth), 2),
    }


if __name__ == "__main__":
    kind, number = sys.argv[1], int(sys.argv[2])
    measure = {"sessions": open_sessions, "properties": property_values}[kind]
    print(json.dumps(measure(number)))
