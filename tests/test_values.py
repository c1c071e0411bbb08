"""Statistic values (SPEC §4, §5): NumberStats, Distribution and DistinctCounter.

The expectations come from the ``statistics`` module and from counting by hand, never from
the code under test.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engauge.stream.aggregator import PROFILE_MAPS
from engauge.stream.bucket import Bucket
from engauge.stream.interaction import Interaction
from engauge.stream.summary import profile_figures, summary_figures
from engauge.stream.values import DistinctCounter, Distribution, NumberStats, _sketch_key

settings.register_profile("engauge-values", max_examples=150, deadline=None)
VALUES = settings.get_profile("engauge-values")


def stats_of(values: list[float]) -> NumberStats:
    stats = NumberStats()
    for value in values:
        stats.add(value)
    return stats


def distribution_of(values: list[str]) -> Distribution:
    distribution = Distribution()
    for value in values:
        distribution.add(value)
    return distribution


# --- NumberStats ------------------------------------------------------------------------


def test_variance_stays_accurate_around_a_large_offset() -> None:
    """1e9 plus noise: a sum-of-squares formula loses every digit here; Welford must not."""
    rng = random.Random(7)
    values = [1e9 + rng.uniform(-0.5, 0.5) for _ in range(10_000)]
    rendered = stats_of(values).to_json()
    assert math.isclose(rendered["variance"], statistics.variance(values), rel_tol=1e-6)
    assert math.isclose(rendered["stdDev"], statistics.stdev(values), rel_tol=1e-6)
    assert math.isclose(rendered["mean"], statistics.fmean(values), rel_tol=1e-12)
    assert math.isclose(rendered["sum"], math.fsum(values), rel_tol=1e-12)


def test_merged_variance_stays_accurate_around_a_large_offset() -> None:
    """Merging halves (Chan) must be as accurate as adding one by one."""
    rng = random.Random(11)
    values = [1e9 + rng.uniform(-0.5, 0.5) for _ in range(5_000)]
    merged = stats_of(values[:1234])
    merged.merge(stats_of(values[1234:]))
    assert math.isclose(merged.to_json()["variance"], statistics.variance(values), rel_tol=1e-6)


def test_variance_of_noise_near_float_resolution() -> None:
    """Noise of 0.01 at 1e9 is ~1e5 ulps: the variance must still be right to 1e-4.

    (A naive E[x^2] - E[x]^2 would be off by many orders of magnitude, even negative.)
    """
    rng = random.Random(13)
    values = [1e9 + rng.uniform(-0.01, 0.01) for _ in range(5_000)]
    merged = stats_of(values[:1234])
    merged.merge(stats_of(values[1234:]))
    expected = statistics.variance(values)
    assert math.isclose(stats_of(values).to_json()["variance"], expected, rel_tol=1e-4)
    assert math.isclose(merged.to_json()["variance"], expected, rel_tol=1e-4)


def test_empty_stats_are_null_not_nan() -> None:
    """count 0: mean, min and max are null; variance and stdDev too; sum is 0."""
    assert NumberStats().to_json() == {
        "count": 0,
        "sum": 0.0,
        "mean": None,
        "min": None,
        "max": None,
        "variance": None,
        "stdDev": None,
    }


def test_one_value_has_no_variance() -> None:
    """count 1: the sample variance (n - 1) is undefined, so null."""
    assert stats_of([4.5]).to_json() == {
        "count": 1,
        "sum": 4.5,
        "mean": 4.5,
        "min": 4.5,
        "max": 4.5,
        "variance": None,
        "stdDev": None,
    }


def test_two_values_use_the_sample_variance() -> None:
    """Variance of [1, 3] is 2 with n - 1 (it would be 1 with n)."""
    rendered = stats_of([1.0, 3.0]).to_json()
    assert rendered["variance"] == 2.0
    assert math.isclose(rendered["stdDev"], math.sqrt(2.0))
    assert (rendered["mean"], rendered["min"], rendered["max"]) == (2.0, 1.0, 3.0)


def test_overflowing_values_never_render_infinity() -> None:
    """SPEC §5: no response contains NaN or Infinity, whatever numbers came in."""
    rendered = stats_of([1.7e308, 1.7e308, -1.7e308]).to_json()
    json.dumps(rendered, allow_nan=False)
    assert rendered["count"] == 3


@VALUES
@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), max_size=60))
def test_number_stats_agree_with_statistics(values: list[float]) -> None:
    rendered = stats_of(values).to_json()
    assert rendered["count"] == len(values)
    assert math.isclose(rendered["sum"], math.fsum(values), rel_tol=1e-9, abs_tol=1e-3)
    if not values:
        return
    assert (rendered["min"], rendered["max"]) == (min(values), max(values))
    assert math.isclose(rendered["mean"], statistics.fmean(values), rel_tol=1e-9, abs_tol=1e-3)
    if len(values) > 1:
        expected = statistics.variance(values)
        assert math.isclose(rendered["variance"], expected, rel_tol=1e-7, abs_tol=1e-3)
    else:
        assert rendered["variance"] is None


# --- Distribution -----------------------------------------------------------------------


def test_ranking_is_count_descending_then_value_ascending() -> None:
    rendered = distribution_of(["b", "b", "a", "a", "c", "c", "c", "d"]).to_json()
    assert [row["value"] for row in rendered["values"]] == ["c", "a", "b", "d"]
    assert [row["count"] for row in rendered["values"]] == [3, 2, 2, 1]
    assert [row["percentage"] for row in rendered["values"]] == [3 / 8, 2 / 8, 2 / 8, 1 / 8]
    assert (rendered["total"], rendered["distinct"], rendered["mode"], rendered["other"]) == (
        8,
        4,
        "c",
        0,
    )


def test_empty_distribution_has_no_mode_and_no_nan() -> None:
    rendered = Distribution().to_json()
    assert rendered == {"total": 0, "distinct": 0, "mode": None, "values": [], "other": 0}


def test_top_100_are_listed_and_the_rest_is_other() -> None:
    """150 values with counts 1..150: the 100 largest are listed, the 50 smallest summed."""
    values = [f"v{n:03d}" for n in range(1, 151) for _ in range(n)]
    rendered = distribution_of(values).to_json()
    listed = rendered["values"]
    assert len(listed) == 100
    assert [row["count"] for row in listed] == list(range(150, 50, -1))
    assert rendered["other"] == sum(range(1, 51))
    assert rendered["total"] == len(values)
    assert rendered["distinct"] == 150


def test_ties_at_the_cut_are_broken_by_value() -> None:
    """150 values seen once: the listed 100 are the 100 smallest values."""
    values = [f"v{n:03d}" for n in range(150)]
    random.Random(3).shuffle(values)
    rendered = distribution_of(values).to_json()
    assert [row["value"] for row in rendered["values"]] == sorted(values)[:100]
    assert rendered["other"] == 50


def test_folding_keeps_frequent_values_exact_and_the_total_right() -> None:
    """Past 2,000 distinct values the tail is folded; the frequent values keep exact counts."""
    frequent = [f"page-{n:02d}" for n in range(50)]
    values: list[str] = []
    for index in range(6_000):
        values.append(f"rare-{index}")
        values.append(frequent[index % 50])
    distribution = distribution_of(values)
    rendered = distribution.to_json()
    listed = {row["value"]: row["count"] for row in rendered["values"]}
    expected = Counter(values)
    for value in frequent:
        assert listed[value] == expected[value] == 120
    assert rendered["total"] == len(values)
    assert rendered["other"] == len(values) - sum(listed.values())
    assert rendered["mode"] == "page-00"
    assert len(distribution.counts) <= 2_001, "memory per bucket is bounded"


@VALUES
@given(st.lists(st.sampled_from([f"w{n}" for n in range(40)]), max_size=200))
def test_distribution_matches_counting_by_hand(values: list[str]) -> None:
    counts = Counter(values)
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    rendered = distribution_of(values).to_json()
    assert [(row["value"], row["count"]) for row in rendered["values"]] == ranked
    assert rendered["total"] == len(values)
    assert rendered["distinct"] == len(counts)


# --- DistinctCounter --------------------------------------------------------------------


def test_distinct_users_are_exact_up_to_1024() -> None:
    counter = DistinctCounter()
    for round_ in range(3):
        for index in range(1024):
            counter.add(("", f"user-{index}"))
        assert counter.count() == 1024, round_


def test_distinct_users_are_tuples_not_joined_strings() -> None:
    """("a|b", "c") and ("a", "b|c") are two users, also once the sketch takes over."""
    counter = DistinctCounter()
    counter.add(("a|b", "c"))
    counter.add(("a", "b|c"))
    counter.add(("a", "b|c"))
    assert counter.count() == 2
    sketch = DistinctCounter()
    for index in range(2_000):
        sketch.add((f"{index}:", "x"))
        sketch.add((f"{index}", ":x"))
    assert abs(sketch.count() - 4_000) <= 0.02 * 4_000


@pytest.mark.parametrize("size", [5_000, 50_000])
@pytest.mark.parametrize("prefix", ["user-", "u", "customer:", "anon-", "id"])
def test_distinct_users_are_within_two_percent_beyond_1000(prefix: str, size: int) -> None:
    """SPEC §4: at most 2% error beyond 1,000, for plain sequential user ids."""
    counter = DistinctCounter()
    for index in range(size):
        counter.add(("", f"{prefix}{index}"))
    assert abs(counter.count() - size) <= 0.02 * size, counter.count()


@pytest.mark.parametrize("prefix", ["user-", "u", "anon-"])
def test_profile_users_are_within_two_percent_too(prefix: str) -> None:
    """Endpoint, origin and entity profiles report ``users`` as well: same SPEC bound."""
    bucket = Bucket()
    size = 50_000
    for index in range(size):
        bucket.add_all(
            [
                Interaction(
                    action="view",
                    user_id=f"{prefix}{index}",
                    created_at=0.0,
                    received_at=0.0,
                    origin_type="page",
                    origin_id="home",
                )
            ]
        )
    assert summary_figures(bucket)["users"] == pytest.approx(size, rel=0.02)
    for kind, key in (("origin", ("page", "home")), ("endpoint", ("view", "", "", "page", "home"))):
        profile = getattr(bucket, PROFILE_MAPS[kind])[key]
        users = profile_figures(kind, profile)["users"]
        assert abs(users - size) <= 0.02 * size, (kind, users)


@given(st.tuples(st.text(), st.text()))
def test_a_users_sketch_key_is_the_generic_encoding(user: tuple[str, str]) -> None:
    """Sketches in existing snapshots hashed users with the generic encoding; the fast path
    for pairs must give the very same string, or restored users would count twice."""
    generic = "".join(f"{len(part)}:{part}" for part in user)
    assert _sketch_key(user) == generic


def test_a_copied_counter_counts_the_same_and_changes_alone() -> None:
    """A bucket takes a copy of a partial's counter for a new key; the two must not share
    a set or a sketch, exact or not."""
    for size in (10, 3_000):
        original = DistinctCounter()
        for index in range(size):
            original.add(("", f"user-{index}"))
        copy = original.copy()
        assert copy.count() == original.count()
        for index in range(size, 2 * size):
            copy.add(("", f"user-{index}"))
        assert original.count() == pytest.approx(size, rel=0.02)
        assert copy.count() == pytest.approx(2 * size, rel=0.02)


def test_a_counter_merged_into_sketches_stays_exact_and_its_own() -> None:
    """Merging an exact counter into a sketch keeps a sketch of its members for the next
    merge; adding to it afterwards must drop that sketch, or the next merge would miss the
    new member."""
    small = DistinctCounter()
    for index in range(500):
        small.add(("", f"user-{index}"))
    first, second = DistinctCounter(), DistinctCounter()
    for index in range(2_000):
        first.add(("", f"other-{index}"))
        second.add(("", f"other-{index}"))
    first.merge(small)
    assert small.count() == 500, "still exact"
    small.add(("", "late-user"))
    second.merge(small)
    assert small.count() == 501
    # The sketches are deterministic and this small, so the one new member shows.
    assert second.count() == first.count() + 1


def test_numbers_beyond_a_floats_range_in_sum_render_as_null_not_a_crash() -> None:
    largest = 1.7976931348623157e308
    for counts in ({largest: 2, 1.0: 1}, {largest: 1, -largest: 1}, {1e200: 3}):
        stats = NumberStats.of_counts(counts)
        rendered = stats.to_json()
        assert rendered["count"] == sum(counts.values())
        assert rendered["max"] == max(counts)
        for value in rendered.values():
            assert value is None or math.isfinite(value)
    assert NumberStats.of_counts({largest: 2}).to_json()["sum"] is None
