"""Write the golden snapshot of the current format from the fixed stream beside it.

    .venv/bin/python snapshots/generate.py

Run it once when a new snapshot format is introduced, and commit the new file; never
rewrite an older one. ``stream.ndjson`` holds the interactions (created and received
times included) in arrival order; the snapshot is the state after applying them all.
"""

from __future__ import annotations

import random
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec

from engauge.store import snapshot as snapshots
from engauge.store.journal import Position
from engauge.stream.aggregator import Aggregator
from engauge.stream.calendar import Calendar
from engauge.stream.interaction import Interaction
from engauge.stream.settings import Settings

HERE = Path(__file__).parent
STREAM = HERE / "stream.ndjson"
ZONE = "Europe/Berlin"
WEEK_START = 0
SESSION_DELAY = 1800.0
START = 1_790_000_000.0  # 2026-09-21, a month before a daylight-saving change


def make_stream(count: int = 3000) -> list[Interaction]:
    """A varied, reproducible stream: late and out-of-order events, duplicates, conversions,
    properties of every kind, more than 1,024 users (so a sketch is stored too)."""
    rng = random.Random(7)
    items = []
    received = START
    for number in range(count):
        received += rng.choice((1.0, 2.0, 5.0))
        action = rng.choice(("view", "view", "click", "conversion"))
        properties: dict[str, object] = {
            "plan": rng.choice(("free", "pro")),
            "tags": rng.sample(["a", "b", 3, 4.5], 2),
            "flag": rng.random() < 0.5,
        }
        if action == "conversion":
            properties["amount"] = rng.choice((10, 12.5, "n/a"))
        items.append(
            Interaction(
                action=action,
                user_id=f"user-{number if number % 2 else rng.randrange(20)}",
                user_type=rng.choice(("", "member")),
                created_at=received - rng.choice((0.0, 0.0, 120.0, 7200.0, 86400.0 * 3)),
                received_at=received,
                origin_type="page",
                origin_id=rng.choice(("/", "/pricing", "/docs")),
                entity_type=rng.choice(("", "product")),
                entity_id=rng.choice(("", "p1", "p2")),
                device_type=rng.choice(("mobile", "desktop", "")),
                session_type=rng.choice(("", "app")),
                properties=properties,  # type: ignore[arg-type]
                id=rng.choice(("", "", "", "", "", f"event-{number % 50}")),
            )
        )
    return items


def read_stream() -> list[Interaction]:
    decoder = msgspec.json.Decoder(Interaction)
    return [decoder.decode(line) for line in STREAM.read_bytes().splitlines() if line]


def aggregate(items: list[Interaction]) -> Aggregator:
    aggregator = Aggregator(Calendar(ZoneInfo(ZONE), WEEK_START), SESSION_DELAY, Settings())
    aggregator.apply(items)
    return aggregator


def main() -> None:
    if not STREAM.exists():
        STREAM.write_bytes(b"".join(msgspec.json.encode(item) + b"\n" for item in make_stream()))
    state = aggregate(read_stream()).state()
    snapshot = snapshots.Snapshot(Position(1, 0), ZONE, WEEK_START, state)
    path = HERE / f"format-{snapshots.FORMAT}.snapshot"
    if path.exists():
        raise SystemExit(
            f"{path.name} exists: a released format's golden file is never rewritten; "
            "raise snapshot.FORMAT for a new format"
        )
    path.write_bytes(snapshots.encode(snapshot))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
