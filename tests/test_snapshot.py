"""Snapshots: restore is the identity, damaged files fall back, newer formats stop start-up."""

from __future__ import annotations

import zlib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_stream_model import MODEL, Stream, ample_settings, assert_close, state, streams

from engauge.store import snapshot as snapshots
from engauge.store.journal import Position
from engauge.store.snapshot import NewerFormatError, Snapshot
from engauge.stream.aggregator import Aggregator
from engauge.stream.calendar import Calendar
from engauge.stream.interaction import Interaction
from engauge.stream.settings import Settings


def fresh(stream: Stream) -> Aggregator:
    return Aggregator(
        Calendar(stream.zone, stream.week_start), stream.delay, ample_settings(stream)
    )


def through_a_file(aggregator: Aggregator, stream: Stream, position: Position) -> Snapshot:
    snapshot = Snapshot(position, str(stream.zone), stream.week_start, aggregator.state())
    return snapshots.decode(snapshots.encode(snapshot))


def run(aggregator: Aggregator, items: list[Interaction]) -> None:
    for item in items:
        aggregator.apply([item])
        aggregator.expire(item.received_at)


@MODEL
@given(streams(), st.data())
def test_restore_then_continue_equals_an_uninterrupted_run(
    stream: Stream, data: st.DataObject
) -> None:
    """A restart at any point (snapshot, restore, go on) changes no statistic and no session."""
    items = stream.interactions
    cut = data.draw(st.integers(0, len(items)), label="cut")
    uninterrupted = fresh(stream)
    run(uninterrupted, items)
    uninterrupted.expire(stream.now)

    before = fresh(stream)
    run(before, items[:cut])
    restored = fresh(stream)
    restored.restore(through_a_file(before, stream, Position(1, cut)).state)
    assert restored.sessions.open == before.sessions.open
    assert restored.dedup.seen == before.dedup.seen
    assert_close(state(restored), state(before), "restored")
    run(restored, items[cut:])
    restored.expire(stream.now)
    assert_close(state(restored), state(uninterrupted), "continued")


def sample(position: Position, users: int) -> Snapshot:
    aggregator = Aggregator(Calendar(ZoneInfo("UTC")), 60.0, Settings())
    aggregator.apply(
        [
            Interaction(action="view", user_id=f"u{n}", created_at=1e9 + n, received_at=1e9 + n)
            for n in range(users)
        ]
    )
    return Snapshot(position, "UTC", 0, aggregator.state())


def test_newest_readable_snapshot_wins_and_damage_falls_back(tmp_path: Path) -> None:
    snapshots.write(tmp_path, sample(Position(1, 10), users=1))
    newest = snapshots.write(tmp_path, sample(Position(2, 20), users=2))
    loaded = snapshots.load_newest(tmp_path)
    assert loaded is not None and loaded.position == Position(2, 20)
    data = bytearray(newest.read_bytes())
    data[-5] ^= 0xFF
    newest.write_bytes(bytes(data))
    loaded = snapshots.load_newest(tmp_path)
    assert loaded is not None and loaded.position == Position(1, 10)
    assert loaded.state.applied == 1


def test_no_readable_snapshot_means_none(tmp_path: Path) -> None:
    assert snapshots.load_newest(tmp_path / "missing") is None
    (tmp_path / "00000001-000000000000.snapshot").write_bytes(b"not a snapshot at all")
    assert snapshots.load_newest(tmp_path) is None


def test_a_deeply_nested_payload_is_a_damaged_snapshot(tmp_path: Path) -> None:
    """A file the snapshot fuzz target failed on: with a right checksum, a payload of
    nested arrays raised RecursionError, which stopped start-up instead of falling back."""
    payload = b"\x91" * 5000 + b"\xc0"  # [[[…[nil]…]]]
    header = snapshots.HEADER.pack(snapshots.MAGIC, snapshots.FORMAT, zlib.crc32(payload))
    with pytest.raises(snapshots.SnapshotError, match="nested too deeply"):
        snapshots.decode(header + payload)
    snapshots.write(tmp_path, sample(Position(1, 0), users=1))
    (tmp_path / "00000002-000000000000.snapshot").write_bytes(header + payload)
    loaded = snapshots.load_newest(tmp_path)
    assert loaded is not None and loaded.position == Position(1, 0)


def test_a_newer_format_stops_instead_of_guessing(tmp_path: Path) -> None:
    data = bytearray(snapshots.encode(sample(Position(1, 0), users=1)))
    data[16:20] = (snapshots.FORMAT + 1).to_bytes(4, "little")
    (tmp_path / "00000001-000000000000.snapshot").write_bytes(bytes(data))
    with pytest.raises(NewerFormatError, match="newer than this Engauge reads"):
        snapshots.load_newest(tmp_path)


def test_prune_keeps_two_and_says_where_the_journal_must_start(tmp_path: Path) -> None:
    for number in range(1, 5):
        snapshots.write(tmp_path, sample(Position(number, 7), users=1))
    assert snapshots.prune(tmp_path) == Position(3, 7)
    assert len(snapshots.snapshot_files(tmp_path)) == 2


def test_sketches_survive_a_snapshot() -> None:
    """Beyond 1,024 users the distinct count is a HyperLogLog sketch: it must round-trip."""
    snapshot = sample(Position(1, 0), users=3000)
    restored = snapshots.decode(snapshots.encode(snapshot))
    assert restored.state.all_time.users.members is None
    assert restored.state.all_time.users.count() == snapshot.state.all_time.users.count()


def test_one_snapshot_alone_covers_nothing(tmp_path: Path) -> None:
    snapshots.write(tmp_path, sample(Position(3, 7), users=1))
    assert snapshots.prune(tmp_path) is None
