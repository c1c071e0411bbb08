"""Write the seed corpus, ``corpus/<target>/``: ``python -m fuzz.seeds``.

Seeds are small inputs of every accepted form — the fuzzer mutates them, so each branch
they reach is explored first — plus the inputs of crashes found earlier, kept so that every
run tries them again. The files are committed; rerun this after changing a seed.
"""

from __future__ import annotations

import csv
import io
import shutil
import zlib
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

import datasketches
import msgspec

from engauge.store import snapshot as snapshots
from engauge.store.journal import Position, encode_record
from engauge.stream.aggregator import Aggregator
from engauge.stream.calendar import INTERVALS, Calendar
from engauge.stream.interaction import Interaction
from engauge.stream.settings import Settings
from engauge.stream.values import EXACT_DISTINCT, HLL_LG_K, DistinctCounter
from fuzz.targets import SDK_ROUTES
from snapshots.generate import SESSION_DELAY, WEEK_START, ZONE, read_stream

CORPUS = Path(__file__).parent / "corpus"

INTERACTIONS: list[object] = [
    {"action": "view", "userID": "u1"},
    {
        "action": "conversion", "userId": "u2", "USERTYPE": "member", "entityType": "product",
        "entityID": "p1", "originType": "page", "originID": "/cart", "deviceType": "mobile",
        "deviceID": "d1", "sessionType": "app", "id": "event-1",
        "timestamp": "2026-12-01T10:00:00+01:00",
        "properties": {"amount": 12.5, "plan": "pro", "beta": True, "tags": ["a", 3], "n": None},
    },
    {"action": "view", "userID": "u3", "timestamp": 1764842400500, "extra": {"ignored": 1}},
    {"action": "", "userID": 5, "timestamp": "yesterday", "properties": {"a": {"b": 1}}},
]  # fmt: skip
TIMESTAMPS = [
    "2026-12-04T10:00:00Z", "2026-12-04t10:00:00.5+02:00", "2026-12-04T10:00:00",
    "2026-12-04", "2026-12-04 10:00", "2026-12-04 10:00:30.125",
    "Fri, 04 Dec 2026 10:00:00 GMT", "Fri, 04 Dec 2026 10:00:00 -0500",
    "2026-03-08T02:30:00",  # in New York's daylight-saving gap
]  # fmt: skip
SEGMENT = {
    "writeKey": "key",
    "sentAt": "2026-12-01T10:00:01Z",
    "batch": [
        {"type": "track", "event": "signup", "userId": "u1", "messageId": "m1",
         "timestamp": "2026-12-01T10:00:00Z", "properties": {"plan": {"name": "pro"}}},
        {"type": "page", "anonymousId": "a1", "name": "Home",
         "context": {"page": {"path": "/"}, "device": {"type": "mobile"}}},
        {"type": "screen", "userId": 42, "name": "Settings"},
        {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}},
        {"type": "alias", "userId": "u1"},
    ],
}  # fmt: skip
POSTHOG = {
    "api_key": "key",
    "sent_at": "2026-12-01T10:00:01Z",
    "batch": [
        {"event": "$pageview", "distinct_id": "u1", "uuid": "e1",
         "timestamp": "2026-12-01T10:00:00Z",
         "properties": {"$current_url": "https://example.com/docs?x=1", "$device_type": "Mobile",
                        "products": [{"price": 1}, {"price": 2}]}},
        {"event": "$screen", "properties": {"distinct_id": 7, "$screen_name": "Home"}},
    ],
}  # fmt: skip
GO_ROWS = [
    # action, entityType, entityID, originType, originID, userType, userID, deviceType,
    # deviceID, sessionType, sessionID, timestamp, createdAt, receivedAt, properties
    ["view", "", "", "page", "home", "", "u1", "mobile", "", "", "s1", "",
     "2021-03-01 10:00:00 +0000 UTC", "2021-03-01 10:00:01 +0000 UTC", "{}"],
    ["conversion", "product", "p, 1", "page", "cart", "member", "u2", "", "", "web", "s2",
     "1614592800", "2021-03-01 05:30:00.925751171 -0500 EST",
     "2021-03-01 05:30:01.1 -0500 EST", '{"amount": 12.5, "note": "say \\"hi\\", twice"}'],
    ["view", "", "", "", "", "", "u3", "", "", "", "", "", "", "", ""],
    ["too", "few", "columns"],
]  # fmt: skip


def json_lines(items: Iterable[object]) -> bytes:
    return b"".join(msgspec.json.encode(item) + b"\n" for item in items)


def go_csv(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue().encode()


def seeds() -> dict[str, dict[str, bytes]]:
    """Every target's seeds by file name."""
    stream = read_stream()[:12]
    segment = b"".join(encode_record(stream[start : start + 4]) for start in range(0, 12, 4))
    encode = msgspec.json.encode
    return {
        "interaction": {
            **{f"item-{number}": encode(item) for number, item in enumerate(INTERACTIONS)},
            "batch": encode(INTERACTIONS),
        },
        "ndjson": {"batch": json_lines(INTERACTIONS) + b"not json\n\n"},
        "timestamp": {
            **{f"text-{number}": text.encode() for number, text in enumerate(TIMESTAMPS)},
            "int": b"i" + (1_764_842_400).to_bytes(8, "little"),
            "float": b"f" + msgspec.msgpack.encode(1_764_842_400.5)[1:],
        },
        "sdk": {
            "segment-batch": _route("/v1/batch") + encode(SEGMENT),
            "segment-track": _route("/v1/track") + encode(SEGMENT["batch"][0]),
            "posthog-batch": _route("/batch") + encode(POSTHOG),
            "posthog-capture": _route("/capture") + encode(POSTHOG["batch"][0]),
            "regression-deep": _route("/capture") + b'{"e":' + b"[" * 5000 + b"]" * 5000 + b"}",
        },
        "import-csv": {
            "go-day": go_csv(GO_ROWS),
            "regression-deep-properties": go_csv([[*GO_ROWS[0][:14], "[" * 5000]]),
        },
        "import-ndjson": {"rows": json_lines(INTERACTIONS)},
        "journal": {"segment": segment, "torn": segment[:-5]},
        "snapshot": {"small": small_snapshot(stream[:1]), "regression-deep": deep_snapshot()},
    }


def small_snapshot(interactions: list[Interaction]) -> bytes:
    """A snapshot of a few interactions, all-time statistics only (every interval would
    make it 20 KB an interaction), whose distinct users are a sketch, so that the fuzzer
    reaches the sketch's decoding too."""
    settings = Settings(stats_toggles=dict.fromkeys(INTERVALS, False))
    aggregator = Aggregator(Calendar(ZoneInfo(ZONE), WEEK_START), SESSION_DELAY, settings)
    aggregator.apply(interactions)
    state = aggregator.state()
    sketch = datasketches.hll_sketch(HLL_LG_K)  # filled in order: the same bytes every time
    for number in range(EXACT_DISTINCT + 1):
        sketch.update(f"user-{number}")
    state.all_time.users = DistinctCounter(members=None, sketch=sketch)
    return snapshots.encode(snapshots.Snapshot(Position(1, 0), ZONE, WEEK_START, state))


def deep_snapshot() -> bytes:
    """A snapshot whose payload is arrays nested 5,000 deep, under a right checksum."""
    payload = b"\x91" * 5000 + b"\xc0"
    return snapshots.HEADER.pack(snapshots.MAGIC, snapshots.FORMAT, zlib.crc32(payload)) + payload


def _route(path: str) -> bytes:
    return bytes([SDK_ROUTES.index(path)])


def main() -> None:
    for target, files in seeds().items():
        directory = CORPUS / target
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for name, data in files.items():
            (directory / name).write_bytes(data)
    print(f"wrote {sum(map(len, seeds().values()))} seeds into {CORPUS}")


if __name__ == "__main__":
    main()
