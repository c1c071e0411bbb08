"""Breakdowns stay bounded whatever clients send: beyond the cap, keys share "other"."""

from __future__ import annotations

import pytest

from engauge.stream import dedup
from engauge.stream.bucket import Bucket, CompletedSession
from engauge.stream.dedup import DedupWindow
from engauge.stream.interaction import Interaction
from engauge.stream.summary import summary_json


def conversion(number: int) -> Interaction:
    return Interaction(
        action="conversion",
        user_id="u",
        entity_id=f"e{number}",
        created_at=0.0,
        received_at=0.0,
        properties={"amount": 2},
    )


def session(number: int) -> CompletedSession:
    return CompletedSession(0.0, ("t", f"d{number}", ""), 1.0, 1, True, False, ("", ""), ("", ""))


def test_conversion_endpoints_beyond_the_cap_count_as_other() -> None:
    bucket = Bucket(profile_cap=10)
    for number in range(50):
        bucket.add(conversion(number))
    assert len(bucket.conversion_endpoints) == 11
    rendered = {row["endpoint"]: row for row in summary_json(bucket)["conversionStats"]}
    assert rendered["other"]["count"] == 40
    assert rendered["other"]["revenue"] == 80
    assert sum(row["count"] for row in rendered.values()) == 50


def test_session_groups_beyond_the_cap_count_as_other() -> None:
    bucket = Bucket(profile_cap=10)
    for number in range(50):
        bucket.add_session(session(number))
    groups = summary_json(bucket)["sessionStats"]
    assert len(groups) == 11
    other = next(group for group in groups if group["userType"] is None)
    assert other["count"] == 40
    assert sum(group["count"] for group in groups) == 50


def test_dedup_window_forgets_the_oldest_beyond_its_capacity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dedup, "MAX_IDS", 3)
    window = DedupWindow()
    for number in range(5):
        assert not window.is_duplicate(f"id{number}", float(number))
    assert len(window) == 3
    assert window.is_duplicate("id4", 10.0)
    assert not window.is_duplicate("id0", 10.0)
