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
        bucket.add_all([conversion(number)])
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


def view(number: int) -> Interaction:
    return Interaction(
        action="view",
        user_id=f"u{number}",
        origin_type="page",
        origin_id=f"/{number}",
        created_at=0.0,
        received_at=0.0,
        properties={f"p{number}": number},
    )


def test_profiles_beyond_the_cap_count_as_other_when_counted_and_when_merged() -> None:
    """Counting per endpoint and merging into a bucket with room for fewer keys both keep
    the cap: ten endpoints and origins by name, the rest under "other", nothing lost."""
    counted = Bucket(profile_cap=10)
    counted.add_all([view(number) for number in range(50)])
    merged = Bucket(profile_cap=10)
    merged.merge(Bucket(profile_cap=100))
    wide = Bucket(profile_cap=100)
    wide.add_all([view(number) for number in range(50)])
    merged.merge(wide)
    for bucket in (counted, merged):
        for profiles in (bucket.endpoints, bucket.origins):
            assert len(profiles) == 11
            assert profiles[None].total == 40
            assert sum(profile.total for profile in profiles.values()) == 50
        assert len(bucket.properties) == 50, "bucket property names have a cap of their own"
