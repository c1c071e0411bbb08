"""The journal on real files: round trip, torn tails, failed writes, segment rolling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engauge.store import journal as journal_module
from engauge.store.journal import Journal
from engauge.stream.interaction import Interaction


def interaction(number: int) -> Interaction:
    return Interaction(
        action="view",
        user_id=f"u{number}",
        created_at=1_700_000_000.0 + number,
        received_at=1_700_000_000.5 + number,
        properties={"n": number, "tags": ["a", "b"], "ok": True},
        id=f"e{number}",
    )


def replay(directory: Path) -> tuple[list[Interaction], Journal]:
    seen: list[Interaction] = []
    journal = Journal.recover(directory, seen.extend)
    return seen, journal


def test_round_trip_keeps_order_and_values(tmp_path: Path) -> None:
    _, journal = replay(tmp_path)
    batches = [[interaction(n) for n in range(k, k + 3)] for k in range(0, 30, 3)]
    for batch in batches:
        journal.append(batch)
    journal.close()
    seen, again = replay(tmp_path)
    again.close()
    assert seen == [item for batch in batches for item in batch]


def test_torn_tail_is_cut_and_appends_continue(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, journal = replay(tmp_path)
    journal.append([interaction(1)])
    journal.close()
    segment = next(tmp_path.glob("*.log"))
    whole = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(b"\x10\x00\x00\x00garbage")
    seen, journal = replay(tmp_path)
    assert seen == [interaction(1)]
    assert segment.stat().st_size == whole
    assert "torn by a crash" in caplog.text
    assert (tmp_path / f"{segment.name}.damaged-{whole}").read_bytes() == b"\x10\x00\x00\x00garbage"
    journal.append([interaction(2)])
    journal.close()
    seen, journal = replay(tmp_path)
    journal.close()
    assert seen == [interaction(1), interaction(2)]


def test_flipped_byte_ends_the_segment(tmp_path: Path) -> None:
    _, journal = replay(tmp_path)
    journal.append([interaction(1)])
    journal.append([interaction(2)])
    journal.close()
    segment = next(tmp_path.glob("*.log"))
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF
    segment.write_bytes(bytes(data))
    seen, journal = replay(tmp_path)
    journal.close()
    assert seen == [interaction(1)]


def test_segments_roll_and_replay_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_module, "SEGMENT_BYTES", 200)
    _, journal = replay(tmp_path)
    for number in range(20):
        journal.append([interaction(number)])
    journal.close()
    assert len(list(tmp_path.glob("*.log"))) > 3
    seen, journal = replay(tmp_path)
    journal.close()
    assert seen == [interaction(n) for n in range(20)]


def test_full_disk_raises_and_acknowledges_nothing(tmp_path: Path) -> None:
    """/dev/full fails every write with ENOSPC, exactly like a full disk."""
    _, journal = replay(tmp_path)
    journal.append([interaction(1)])
    journal.sync()
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, journal._fd)
    os.close(full)
    with pytest.raises(journal_module.JournalError, match="No space left"):
        journal.append([interaction(2)])
    os.close(journal._fd)
    seen, journal = replay(tmp_path)
    journal.close()
    assert seen == [interaction(1)]
