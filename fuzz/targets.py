"""The readers under fuzz, one target each, and what a clean outcome is for each.

A target feeds the fuzzer's bytes to one reader the way Engauge does and returns quietly
when the reader took them or refused them with its own error (``ApiError``,
``InvalidInteraction``, ``TimestampError``, ``SnapshotError``, ...), or, for the journal,
cut them at the last whole record. Any other exception, a broken invariant (an
``AssertionError`` from :func:`require`) or a hang is a failure that atheris reports with
the input that caused it.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec

from engauge.http.errors import ApiError, Refused
from engauge.http.ingest import split_ndjson
from engauge.http.jsonio import decode_json
from engauge.http.sdk import (
    POSTHOG_PATHS,
    SEGMENT_PATHS,
    body_key,
    posthog_messages,
    segment_messages,
)
from engauge.importer import read_rows
from engauge.store import snapshot as snapshots
from engauge.store.journal import HEADER, encode_record, read_segment
from engauge.stream.calendar import EARLIEST, LATEST
from engauge.stream.interaction import Interaction
from engauge.stream.timestamps import TimestampError, parse_timestamp
from engauge.stream.validation import InvalidInteraction, validate_interaction

NOW = 1_796_000_000.0
"""The receipt time of every fuzzed interaction (2026-12-01): a fixed one keeps runs
reproducible, and the five-minutes-ahead rule needs one."""
ZONE = ZoneInfo("America/New_York")
"""A zone with daylight-saving gaps and folds, for timestamps without an offset."""
SDK_ROUTES = sorted(SEGMENT_PATHS | POSTHOG_PATHS)
"""The routes the first byte of an ``sdk`` input picks from."""

_records = msgspec.msgpack.Decoder(list[Interaction])
_records_encoder = msgspec.msgpack.Encoder()
_scratch = os.memfd_create("engauge-fuzz")


def require(condition: bool, problem: str) -> None:
    """Fail the input (atheris reports any exception) when an invariant does not hold."""
    if not condition:
        raise AssertionError(problem)


def as_file(data: bytes) -> Path:
    """``data`` as a file, for the readers that take a path: an in-memory file, rewritten
    for each input, so the fuzzer neither touches the disk nor leaves files behind."""
    os.ftruncate(_scratch, 0)
    os.pwrite(_scratch, data, 0)
    return Path(f"/proc/self/fd/{_scratch}")


def accept(items: Iterable[object], now: float = NOW) -> None:
    """Validate each item like the ingest path does (clean: ``InvalidInteraction``).

    What is accepted is acknowledged, so it must also come back whole from a journal record.
    """
    for item in items:
        if isinstance(item, Refused):
            continue
        try:
            interaction = validate_interaction(item, now=now, zone=ZONE)
        except InvalidInteraction:
            continue
        record = encode_record([interaction])
        back = _records.decode(record[HEADER.size :])
        require(back == [interaction], f"{interaction!r} does not survive the journal")


def interaction(data: bytes) -> None:
    """``POST /api/interaction`` and a JSON-array batch (clean: ``ApiError``)."""
    try:
        body = decode_json(data)
    except ApiError:
        return
    accept(body if isinstance(body, list) else [body])


def ndjson(data: bytes) -> None:
    """An NDJSON batch: a bad line is a refused item (clean: ``ApiError`` for an empty or
    oversized batch)."""
    try:
        items = split_ndjson(data)
    except ApiError:
        return
    accept(items)


def timestamp(data: bytes) -> None:
    """The ``timestamp`` field: a first byte ``i`` or ``f`` makes the rest a number, else the
    input is text (clean: ``TimestampError``; a result is within the supported years)."""
    try:
        seconds = parse_timestamp(_timestamp_value(data), ZONE)
    except TimestampError:
        return
    require(EARLIEST <= seconds < LATEST, f"{seconds} is outside the supported years")


def _timestamp_value(data: bytes) -> object:
    kind, rest = data[:1], data[1:]
    if kind == b"i":
        return int.from_bytes(rest[:16], "little", signed=True)
    if kind == b"f" and len(rest) >= 8:
        return struct.unpack("<d", rest[:8])[0]
    return data.decode("utf-8", "replace")


def sdk(data: bytes) -> None:
    """Segment and PostHog bodies: the first byte picks the route, the rest is the body
    (clean: ``ApiError`` for a body that is not JSON or nested too deeply; the mapping itself
    never raises)."""
    if not data:
        return
    path, body = SDK_ROUTES[data[0] % len(SDK_ROUTES)], data[1:]
    try:
        key = body_key(body)
        decoded = decode_json(body)
    except ApiError:
        return
    require(key is None or isinstance(key, str), f"body_key gave {key!r}")
    messages = segment_messages if path in SEGMENT_PATHS else posthog_messages
    accept(messages(decoded, path, NOW, ZONE))


def import_csv(data: bytes) -> None:
    """``engauge import`` of a Go Engauge CSV file: bad rows are reported, never raised."""
    _import(data, "engauge-csv")


def import_ndjson(data: bytes) -> None:
    """``engauge import`` of an NDJSON file: bad rows are reported, never raised."""
    _import(data, "ndjson")


def _import(data: bytes, form: str) -> None:
    for _, _, item, received in read_rows(as_file(data), form):
        if not isinstance(item, str):
            accept([item], min(received or NOW, NOW))


def journal(data: bytes) -> None:
    """Replay of a journal segment, as found and with every record's checksum mended so the
    records' contents are read too. Damage ends the segment at the last whole record (a
    clean cut: reading the cut segment gives the same records, whole); nothing raises."""
    for segment in (data, mend_records(data)):
        batches: list[list[Interaction]] = []
        size, whole = read_segment(as_file(segment), batches.append)
        require(0 <= size <= len(segment), f"cut at {size} of {len(segment)} bytes")
        require(whole == (size == len(segment)), f"whole={whole} but cut at {size}")
        again: list[list[Interaction]] = []
        cut = read_segment(as_file(segment[:size]), again.append)
        # Compared as bytes: a mended record may hold a NaN, which equals nothing.
        same = _records_encoder.encode(again) == _records_encoder.encode(batches)
        require(cut == (size, True) and same, f"the cut at {size} is not clean")


def mend_records(data: bytes) -> bytes:
    """``data`` with the checksum of every whole record set right; the rest as it was."""
    mended, offset = bytearray(), 0
    while offset + HEADER.size <= len(data):
        length, _ = HEADER.unpack_from(data, offset)
        payload = data[offset + HEADER.size : offset + HEADER.size + length]
        if len(payload) < length:
            break
        mended += HEADER.pack(length, zlib.crc32(payload)) + payload
        offset += HEADER.size + length
    return bytes(mended + data[offset:])


def snapshot(data: bytes) -> None:
    """A snapshot file, as found and with its checksum mended so its payload is read too
    (clean: ``SnapshotError`` and ``NewerFormatError``)."""
    for variant in (data, mend_snapshot(data)):
        try:
            snapshots.decode(variant)
        except (snapshots.SnapshotError, snapshots.NewerFormatError):
            continue


def mend_snapshot(data: bytes) -> bytes:
    """``data`` with the header's checksum set right for the payload after it."""
    if len(data) < snapshots.HEADER.size:
        return data
    magic, version, _ = snapshots.HEADER.unpack_from(data)
    payload = data[snapshots.HEADER.size :]
    return snapshots.HEADER.pack(magic, version, zlib.crc32(payload)) + payload


TARGETS: dict[str, Callable[[bytes], None]] = {
    "interaction": interaction,
    "ndjson": ndjson,
    "timestamp": timestamp,
    "sdk": sdk,
    "import-csv": import_csv,
    "import-ndjson": import_ndjson,
    "journal": journal,
    "snapshot": snapshot,
}
"""Every target by the name the runner and the corpus directories use."""
