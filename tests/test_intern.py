"""The intern table: equal keys come back as one object, and the table stays bounded."""

from __future__ import annotations

from engauge.stream.intern import InternTable


def origin(number: int) -> tuple[str, str]:
    """A fresh tuple and fresh strings each call, as decoding an interaction makes them."""
    return ("page", f"/page/{number}")


def test_equal_keys_come_back_as_the_first_copy() -> None:
    table = InternTable[tuple[str, str]](capacity=10)
    first = table.intern(origin(1))
    again = origin(1)
    assert again is not first
    assert table.intern(again) is first
    assert table.intern(origin(2)) is not first


def test_a_full_table_starts_over_and_stays_bounded() -> None:
    table = InternTable[tuple[str, str]](capacity=3)
    for number in range(10):
        table.intern(origin(number))
        assert len(table) <= 3
    kept = table.intern(origin(100))
    assert table.intern(origin(100)) is kept, "a key interned after a restart is shared again"
