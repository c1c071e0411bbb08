"""Snapshots: the aggregator's whole state in one versioned, checksummed, pickle-free file.

A file is ``MAGIC · format version · crc32 · payload``; the payload is the state turned
into plain values by cattrs and encoded as msgpack by msgspec (compact, fast, and it keeps
the identity tuples used as map keys). Files are named by the journal position they
cover, so sorting names sorts them by age. Recovery takes the newest file that reads
back whole and falls back to older ones; a file of a newer format stops start-up, since
guessing would silently corrupt statistics. A file of an older format is read by
upgrading its decoded payload, one format at a time, to the newest shape.
"""

from __future__ import annotations

import logging
import re
import struct
import zlib
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs
import datasketches
import msgspec

from engauge.store.files import write_atomically
from engauge.store.journal import Position
from engauge.stream.aggregator import AggregatorState
from engauge.stream.sessions import Session, tally_of
from engauge.stream.values import DistinctCounter

log = logging.getLogger("engauge.snapshot")
T = TypeVar("T")

FORMAT = 2
"""The newest snapshot format this release writes; it reads every format up to it."""
MAGIC = b"ENGAUGE-SNAPSHOT"
HEADER = struct.Struct("<16sII")
SUFFIX = ".snapshot"
KEEP = 2


class SnapshotError(ValueError):
    """A snapshot file is damaged or not a snapshot; an older one may still be good."""


class NewerFormatError(RuntimeError):
    """A snapshot was written by a newer Engauge; start that version or move the file away."""


@attrs.define
class Snapshot:
    """The state plus what it depends on: the journal position it covers and the calendar
    settings its buckets were cut with."""

    position: Position
    timezone: str
    week_start: int
    state: AggregatorState


def warn_if_cut_differently(snapshot: Snapshot, timezone: str, week_start: int) -> None:
    """A snapshot keeps the buckets it has; say so when the calendar settings changed."""
    if (snapshot.timezone, snapshot.week_start) != (timezone, week_start):
        log.warning(
            "the snapshot's buckets were cut in %s with weeks from day %d, not as now "
            "configured; they stay as they are",
            snapshot.timezone,
            snapshot.week_start,
        )


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    # Identity tuples are map keys and hold only strings: kept as tuples, msgpack encodes
    # them as arrays and msgspec decodes array keys back into tuples.
    converter.register_unstructure_hook_func(_is_string_tuple, lambda value: value)
    # Distribution values are strings or booleans, stored as they are.
    converter.register_structure_hook_func(lambda kind: kind is Hashable, lambda value, _: value)
    converter.register_unstructure_hook(DistinctCounter, _unstructure_distinct)
    converter.register_structure_hook(DistinctCounter, _structure_distinct)
    converter.register_unstructure_hook(Session, msgspec.structs.asdict)
    converter.register_structure_hook(Session, lambda value, _: msgspec.convert(value, Session))
    return converter


def _is_string_tuple(kind: Any) -> bool:
    """Bare ``tuple`` (an ``Any`` key at run time) or a tuple type of strings only."""
    if kind is tuple:
        return True
    arguments = getattr(kind, "__args__", ())
    return getattr(kind, "__origin__", None) is tuple and all(
        argument in (str, Ellipsis) for argument in arguments
    )


def _unstructure_distinct(counter: DistinctCounter) -> dict[str, Any]:
    if counter.members is not None:
        return {"members": list(counter.members)}
    return {"sketch": counter.sketch.serialize_compact()}


def _structure_distinct(value: dict[str, Any], _: Any) -> DistinctCounter:
    if "members" in value:
        return DistinctCounter(members={tuple(member) for member in value["members"]})
    return DistinctCounter(
        members=None, sketch=datasketches.hll_sketch.deserialize(value["sketch"])
    )


_convert = _converter()


def _upgrade_format_1(payload: dict[str, Any]) -> None:
    """Format 2 keeps an open session's counts in one ``tally``, with whether it converted
    rather than how often, and no longer its first origin: while the session has one
    origin, that is its ``entry``."""
    for session in payload["state"]["sessions"].values():
        session["tally"] = tally_of(
            session.pop("interactions"),
            converted=session.pop("conversions") > 0,
            several_origins=session.pop("several_origins"),
        )
        del session["first_origin"]


UPGRADES: dict[int, Callable[[dict[str, Any]], None]] = {1: _upgrade_format_1}
"""Per older format, what turns its decoded payload into the next format's, in place."""


def encode_value(value: Any) -> bytes:
    """One value of the state (a bucket, say) in the snapshot's own encoding: what a cluster
    node publishes of its partitions for the dashboard to merge."""
    return msgspec.msgpack.encode(_convert.unstructure(value))


def decode_value(data: bytes, kind: type[T]) -> T:
    """The value of :func:`encode_value`; :class:`SnapshotError` if it is not one."""
    try:
        return _convert.structure(msgspec.msgpack.decode(data), kind)
    except (msgspec.DecodeError, cattrs.BaseValidationError, ValueError, TypeError) as error:
        raise SnapshotError(f"unreadable {kind.__name__}: {error}") from error


def encode(snapshot: Snapshot) -> bytes:
    payload = msgspec.msgpack.encode(_convert.unstructure(snapshot))
    return HEADER.pack(MAGIC, FORMAT, zlib.crc32(payload)) + payload


def decode(data: bytes) -> Snapshot:
    """Read a snapshot; :class:`SnapshotError` if damaged, :class:`NewerFormatError` if newer."""
    if len(data) < HEADER.size:
        raise SnapshotError("too short to be a snapshot")
    magic, version, checksum = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SnapshotError("not a snapshot file")
    if version > FORMAT:
        raise NewerFormatError(
            f"snapshot format {version} is newer than this Engauge reads ({FORMAT}); "
            "run the newer Engauge, or move the snapshots directory away to rebuild "
            "from the journal"
        )
    payload = data[HEADER.size :]
    if zlib.crc32(payload) != checksum:
        raise SnapshotError("checksum mismatch")
    try:
        decoded = msgspec.msgpack.decode(payload)
        for older in range(version, FORMAT):
            UPGRADES[older](decoded)
        return _convert.structure(decoded, Snapshot)
    except (
        msgspec.DecodeError,
        cattrs.BaseValidationError,
        ValueError,
        TypeError,
        LookupError,
        AttributeError,
    ) as error:
        raise SnapshotError(f"unreadable: {error}") from error
    except RecursionError:
        raise SnapshotError("unreadable: nested too deeply to be a snapshot") from None


def _name(position: Position) -> str:
    return f"{position.segment:08d}-{position.offset:012d}{SUFFIX}"


NAME = re.compile(r"^\d{8}-\d{12}" + re.escape(SUFFIX) + "$")


def snapshot_files(directory: Path) -> list[Path]:
    """Snapshot files (named by their position), oldest first; other files are ignored."""
    return sorted(path for path in directory.glob(f"*{SUFFIX}") if NAME.match(path.name))


def write(directory: Path, snapshot: Snapshot) -> Path:
    """Write atomically (temp file, fsync, rename, fsync of the directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = snapshot_path(directory, snapshot.position)
    write_atomically(path, encode(snapshot))
    return path


def snapshot_path(directory: Path, position: Position) -> Path:
    """Where the snapshot covering the journal up to ``position`` is written."""
    return directory / _name(position)


def load_newest(directory: Path) -> Snapshot | None:
    """The newest readable snapshot; damaged ones are skipped with a warning."""
    for path in reversed(snapshot_files(directory)):
        try:
            return decode(path.read_bytes())
        except (SnapshotError, OSError) as error:
            log.warning("snapshot %s skipped: %s", path.name, error)
    return None


def prune(directory: Path) -> Position | None:
    """Keep the newest :data:`KEEP` snapshots; return the oldest kept one's position, before
    which the journal is no longer needed (``None`` while fewer are kept: should the only
    snapshot turn out damaged, the whole journal must still be there)."""
    files = snapshot_files(directory)
    for path in files[:-KEEP]:
        path.unlink()
    kept = files[-KEEP:]
    if len(kept) < KEEP:
        return None
    segment, offset = kept[0].stem.split("-")
    return Position(int(segment), int(offset))
