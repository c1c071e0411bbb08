"""engauge.stream against the plain reference model of SPEC §1, §3, §4 and §5.

Random interaction streams — several users, out-of-order and very late event times,
duplicate ids, conversions with and without a numeric amount, properties, arrival gaps
longer than the session delay, event times across a daylight-saving change — go through
the ``Aggregator``; every bucket of every interval must equal what ``reference_model``
computes from the SPEC's words.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import reference_model as model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engauge.stream.aggregator import PROFILE_MAPS, Aggregator
from engauge.stream.bucket import Bucket, CompletedSession
from engauge.stream.calendar import INTERVALS, Calendar
from engauge.stream.interaction import Interaction
from engauge.stream.settings import DEFAULT_RETENTION, Settings
from engauge.stream.summary import (
    conversions_json,
    profile_json,
    properties_json,
    summary_json,
)
from engauge.stream.values import DistinctCounter, Distribution, NumberStats

settings.register_profile(
    "engauge-stream-model",
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("engauge-stream-unit", max_examples=150, deadline=None)
MODEL = settings.get_profile("engauge-stream-model")
UNIT = settings.get_profile("engauge-stream-unit")

DAY = 24 * 3600

ANCHORS = [
    ("Europe/Berlin", "2026-03-29T01:00:00+00:00"),  # spring forward: a 23-hour day
    ("Europe/Berlin", "2026-10-25T01:00:00+00:00"),  # fall back: 02:00-03:00 twice
    ("Europe/Berlin", "2026-12-31T23:00:00+00:00"),  # local new year
    ("America/New_York", "2026-03-08T07:00:00+00:00"),
    ("America/New_York", "2026-11-01T06:00:00+00:00"),
    ("America/New_York", "2026-07-01T04:00:00+00:00"),  # local quarter start
    ("America/Sao_Paulo", "2018-11-04T03:00:00+00:00"),  # DST began at midnight
    ("America/Sao_Paulo", "2019-02-17T02:00:00+00:00"),  # DST ended at midnight
    ("Asia/Kolkata", "2026-03-31T18:30:00+00:00"),  # half-hour offset, local quarter start
    ("UTC", "2026-12-31T23:30:00+00:00"),
]
"""(zone, instant near a DST change or calendar boundary) the streams are built around."""

USERS = [("", "u1"), ("pro", "u1"), ("", "u2"), ("a|b", "c"), ("a", "b|c")]
ORIGINS = [("", ""), ("page", "home"), ("page", "cart"), ("screen", "home"), ("", "home")]
ENTITIES = [("", ""), ("product", "p1"), ("product", "p2"), ("", "p1")]
ACTIONS = ["view", "click", "conversion", "conversion"]
DELAYS = [60.0, 90.0, 600.0, 1800.0]

PROPERTY_VALUES = {
    "amount": st.one_of(
        st.integers(0, 500),
        st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 2)),
        st.sampled_from(["12.50", "free"]),
        st.booleans(),
    ),
    "plan": st.sampled_from(["free", "pro", "team"]),
    "tags": st.lists(st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(-3, 3)), max_size=4),
    "flag": st.booleans(),
    "score": st.floats(-1e6, 1e6, allow_nan=False),
}
properties_strategy = st.fixed_dictionaries({}, optional=PROPERTY_VALUES)


@dataclass
class Stream:
    """One generated test case: the configuration, the interactions and the final clock."""

    zone: tzinfo
    week_start: int
    delay: float
    interactions: list[Interaction]
    now: float


@st.composite
def gaps(draw: st.DrawFn, delay: int) -> int:
    """Seconds between arrivals: mostly within the delay, sometimes on or past it, rarely a day."""
    kind = draw(st.sampled_from(["within"] * 6 + ["edge", "around", "day"]))
    if kind == "within":
        return draw(st.sampled_from([0, 1, delay // 4, delay // 2]))
    if kind == "edge":
        return draw(st.sampled_from([delay - 1, delay, delay + 1, 2 * delay]))
    if kind == "around":
        return draw(st.integers(0, 3 * delay))
    return draw(st.integers(20 * 3600, 26 * 3600))


@st.composite
def lags(draw: st.DrawFn, delay: int) -> int:
    """Arrival minus event time: on time, jittered, on the delay grid, or hours/days late.

    Negative lags are clients whose clocks run ahead, at most the 5 minutes SPEC §1 allows.
    """
    kind = draw(
        st.sampled_from(["on time"] * 4 + ["small", "small", "grid", "grid", "jitter", "late"])
    )
    if kind == "on time":
        return 0
    if kind == "small":
        return draw(st.integers(0, delay // 2))
    if kind == "grid":
        return draw(st.sampled_from([k * delay // 2 for k in range(-1, 9)]))
    if kind == "jitter":
        return draw(st.integers(-299, delay))
    return draw(st.integers(3600, 3 * DAY))


@st.composite
def timings(draw: st.DrawFn, delay: int) -> tuple[str, float, int]:
    """How an event time is chosen: a lag behind arrival, or on a session-rule boundary.

    ("lag", lag, 0) puts the event ``lag`` seconds before its arrival. ("edge", k, pick)
    puts it exactly k x delay away from an earlier event time of the same user, so the
    equalities of SPEC §3 rules 2-4 (``t = last + delay``, ``t = start - delay``) and ties
    between event times are reached, not just approached.
    """
    if draw(st.integers(0, 4)) == 0:
        return ("edge", draw(st.sampled_from([-1.0, 0.0, 1.0])), draw(st.integers(0, 50)))
    part = draw(st.sampled_from([0.0, 0.0, 0.0, 0.25, 0.5]))
    return ("lag", draw(lags(delay)) - part, 0)


def event_time(
    timing: tuple[str, float, int], received: float, earlier: list[float], delay: float
) -> float:
    """The event time a timing gives, kept within SPEC §1's five minutes ahead of arrival."""
    kind, amount, pick = timing
    if kind == "edge" and earlier:
        created = earlier[pick % len(earlier)] + amount * delay
        if created <= received + 300:
            return created
    return received - (amount if kind == "lag" else 0.0)


@st.composite
def streams(draw: st.DrawFn, max_size: int = 30) -> Stream:
    """A stream around a DST change or calendar boundary, in arrival order."""
    zone_name, anchor_text = draw(st.sampled_from(ANCHORS))
    delay = draw(st.sampled_from(DELAYS))
    users = draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=3, unique=True))
    step = st.tuples(
        st.sampled_from(users),
        st.sampled_from(ACTIONS),
        st.sampled_from(ORIGINS),
        st.sampled_from(ENTITIES),
        st.sampled_from(["", "phone", "desktop"]),
        st.sampled_from(["", "app", "web"]),
        properties_strategy,
        st.sampled_from(["", "", "", "", "a", "b", "c"]),
        gaps(int(delay)),
        timings(int(delay)),
    )
    size = draw(st.integers(1, max_size))
    steps = draw(st.lists(step, min_size=size, max_size=size))
    received = datetime.fromisoformat(anchor_text).timestamp()
    received += draw(st.integers(-8 * 3600, 3600))
    interactions: list[Interaction] = []
    times: dict[tuple[str, str], list[float]] = {user: [] for user in users}
    for user, action, origin, entity, device, kind, properties, event_id, gap, timing in steps:
        received += gap
        created = event_time(timing, received, times[user], delay)
        times[user].append(created)
        interactions.append(
            Interaction(
                action=action,
                user_type=user[0],
                user_id=user[1],
                created_at=created,
                received_at=received,
                origin_type=origin[0],
                origin_id=origin[1],
                entity_type=entity[0],
                entity_id=entity[1],
                device_type=device,
                session_type=kind,
                properties=properties,
                id=event_id,
            )
        )
    now = received + draw(st.sampled_from([0.0, delay - 1, delay, 2 * delay, DAY]))
    week_start = draw(st.sampled_from([0, 6]))
    return Stream(ZoneInfo(zone_name), week_start, delay, interactions, now)


def ample_settings(stream: Stream) -> Settings:
    """Retention long enough that nothing the stream touches is dropped."""
    oldest = min(item.created_at for item in stream.interactions)
    span = stream.now - oldest
    retention = dict(DEFAULT_RETENTION)
    retention["hourly"] = max(72, math.ceil(span / 3600) + 3)
    retention["daily"] = max(400, math.ceil(span / DAY) + 3)
    return Settings(retention=retention)


def run_aggregator(stream: Stream, batches: list[list[Interaction]]) -> Aggregator:
    """Apply the batches in order, expiring at each batch's last arrival, then at ``now``."""
    aggregator = Aggregator(
        Calendar(stream.zone, stream.week_start), stream.delay, ample_settings(stream)
    )
    for batch in batches:
        aggregator.apply(batch)
        if batch:
            aggregator.expire(batch[-1].received_at)
    aggregator.expire(stream.now)
    return aggregator


# --- comparing ----------------------------------------------------------------------


def assert_close(actual: Any, expected: Any, path: str = "") -> None:
    """Deep equality where numbers compare with ``math.isclose``; the path names a mismatch."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not a dict"
        assert set(actual) == set(expected), (
            f"{path}: keys only in engauge {set(actual) - set(expected)}, "
            f"only in the model {set(expected) - set(actual)}"
        )
        for key in expected:
            assert_close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not a list"
        assert len(actual) == len(expected), f"{path}: {actual!r} != {expected!r}"
        for index, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
            assert_close(mine, theirs, f"{path}[{index}]")
    elif _is_number(expected) and _is_number(actual):
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-6), (
            f"{path}: engauge {actual!r}, model {expected!r}"
        )
    else:
        assert actual == expected, f"{path}: engauge {actual!r}, model {expected!r}"
        assert isinstance(actual, bool) == isinstance(expected, bool), path


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def value_counts(distribution: dict[str, Any]) -> dict[str, Any]:
    """A property's value distribution as {(type, value): count}: order-free across types."""
    counts = {
        (type(row["value"]).__name__, row["value"]): row["count"] for row in distribution["values"]
    }
    assert distribution["other"] == 0, "fewer than 100 values must all be listed"
    return counts


def actual_view(bucket: Bucket) -> dict[str, Any]:
    """engauge's bucket in the shape of ``reference_model.expected_view``."""
    summary = summary_json(bucket)
    groups = {}
    for row in summary.pop("sessionStats"):
        key = (row.pop("userType"), row.pop("deviceType"), row.pop("sessionType"))
        groups[key] = row
    summary.pop("conversionStats")
    return {
        "summary": summary,
        "sessionStats": groups,
        "conversionStats": {
            key: conversions_json(value) for key, value in bucket.conversion_endpoints.items()
        },
        "origins": {
            key: {"total": p.total, "entries": p.entries, "exits": p.exits, "bounces": p.bounces}
            for key, p in bucket.origins.items()
        },
        "endpoints": {
            key: {"total": p.total, "users": p.users.count()} for key, p in bucket.endpoints.items()
        },
        "entities": {
            key: {"total": p.total, "users": p.users.count()} for key, p in bucket.entities.items()
        },
        "properties": {
            name: {
                "count": stats.count,
                "numbers": stats.numbers.to_json(),
                "values": value_counts(stats.values.to_json()),
            }
            for name, stats in bucket.properties.items()
        },
    }


def full_view(bucket: Bucket) -> dict[str, Any]:
    """Everything engauge renders for a bucket, with list orders that SPEC leaves open removed."""
    summary = summary_json(bucket)
    summary["conversionStats"] = {row.pop("endpoint"): row for row in summary["conversionStats"]}
    return {
        "summary": summary,
        "properties": properties_json(bucket.properties),
        **{
            kind: {key: profile_json(name, p) for key, p in getattr(bucket, kind).items()}
            for name, kind in PROFILE_MAPS.items()
        },
    }


def assert_matches_model(aggregator: Aggregator, stream: Stream) -> None:
    """Every bucket of every interval, and allTime, equals the reference model's."""
    outcome = model.run(stream.interactions, stream.now, stream.delay)
    contents = model.bucket_contents(outcome, stream.zone, stream.week_start)
    expected_all = model.expected_view(contents[model.ALL_TIME][None])
    assert_close(actual_view(aggregator.all_time), expected_all, "allTime")
    for interval in INTERVALS:
        buckets = aggregator.buckets[interval]
        assert list(buckets) == sorted(contents[interval]), interval
        for start, bucket_contents in contents[interval].items():
            label = datetime.fromtimestamp(start, stream.zone).isoformat()
            expected = model.expected_view(bucket_contents)
            assert_close(actual_view(buckets[start]), expected, f"{interval}@{label}")
    for item in outcome.accepted:
        assert_bucket_lookup(aggregator, stream, item.created_at)


def assert_bucket_lookup(aggregator: Aggregator, stream: Stream, t: float) -> None:
    """``Aggregator.bucket`` finds the stored bucket and the model's bounds for an instant."""
    for interval in INTERVALS:
        start, end, bucket = aggregator.bucket(interval, t)
        assert start == model.period_start(stream.zone, stream.week_start, interval, t)
        assert end == model.period_end(stream.zone, stream.week_start, interval, t)
        assert bucket is aggregator.buckets[interval][start]


# --- the model tests ------------------------------------------------------------------


@MODEL
@given(streams())
def test_aggregator_matches_reference_model(stream: Stream) -> None:
    """One batch: every figure of every bucket is what the SPEC's rules give."""
    assert_matches_model(run_aggregator(stream, [stream.interactions]), stream)


def split(items: list[Interaction], cuts: list[int]) -> list[list[Interaction]]:
    bounds = [0, *sorted(cuts), len(items)]
    return [items[low:high] for low, high in itertools.pairwise(bounds)]


def state(aggregator: Aggregator) -> dict[str, Any]:
    """The aggregator's whole observable state, for comparing two runs."""
    return {
        "allTime": full_view(aggregator.all_time),
        **{
            interval: {start: full_view(b) for start, b in aggregator.buckets[interval].items()}
            for interval in INTERVALS
        },
        "applied": aggregator.applied,
        "duplicates": aggregator.duplicates,
        "open": len(aggregator.sessions),
    }


@MODEL
@given(streams(), st.data())
def test_batching_does_not_matter(stream: Stream, data: st.DataObject) -> None:
    """Journal replay and live ingestion batch differently; the statistics must not differ."""
    items = stream.interactions
    cuts = data.draw(st.lists(st.integers(0, len(items)), max_size=8), label="cuts")
    whole = run_aggregator(stream, [items])
    batched = run_aggregator(stream, split(items, cuts))
    singles = run_aggregator(stream, [[item] for item in items])
    assert_close(state(batched), state(whole), "batched")
    assert_close(state(singles), state(whole), "one by one")
    assert_matches_model(batched, stream)


# --- merging ----------------------------------------------------------------------------

completed_sessions = st.builds(
    CompletedSession,
    opened_at=st.just(0.0),
    group=st.tuples(*[st.sampled_from(["", "x", "y"])] * 3),
    duration=st.floats(0, 1e5, allow_nan=False),
    interactions=st.integers(1, 50),
    bounced=st.booleans(),
    converted=st.booleans(),
    entry=st.sampled_from(ORIGINS),
    exit=st.sampled_from(ORIGINS),
)


def filled_bucket(
    items: list[Interaction], sessions: list[CompletedSession], counts: tuple[int, int]
) -> Bucket:
    bucket = Bucket()
    for item in items:
        bucket.add_all([item])
    for session in sessions:
        bucket.add_session(session)
    bucket.started, bucket.late = counts
    return bucket


@UNIT
@given(streams(), st.lists(completed_sessions, max_size=12), st.data())
def test_merged_halves_equal_the_whole(
    stream: Stream, sessions: list[CompletedSession], data: st.DataObject
) -> None:
    """Partitions are combined with ``merge``: two halves must give the bucket of the whole."""
    items = stream.interactions
    cut = data.draw(st.integers(0, len(items)), label="cut")
    session_cut = data.draw(st.integers(0, len(sessions)), label="session cut")
    whole = filled_bucket(items, sessions, (5, 3))
    first = filled_bucket(items[:cut], sessions[:session_cut], (2, 1))
    second = filled_bucket(items[cut:], sessions[session_cut:], (3, 2))
    first.merge(second)
    assert_close(full_view(first), full_view(whole), "merged")
    empty = Bucket()
    empty.merge(whole)
    assert_close(full_view(empty), full_view(whole), "into empty")


def stats_of(values: list[float]) -> NumberStats:
    stats = NumberStats()
    for value in values:
        stats.add(value)
    return stats


finite = st.floats(-1e6, 1e6, allow_nan=False)


@UNIT
@given(st.lists(finite, max_size=40), st.lists(finite, max_size=40))
def test_number_stats_merge_equals_statistics_of_both(
    left: list[float], right: list[float]
) -> None:
    """Chan's merge must agree with the ``statistics`` module on the concatenation."""
    merged = stats_of(left)
    merged.merge(stats_of(right))
    expected = model.number_stats(left + right)
    actual = merged.to_json()
    for key in ("count", "min", "max"):
        assert actual[key] == expected[key], key
    for key in ("sum", "mean", "variance", "stdDev"):
        if expected[key] is None:
            assert actual[key] is None, key
        else:
            scale = max([1.0, *map(abs, left + right)])
            tolerance = 1e-9 * scale * (scale if key == "variance" else 1.0)
            assert math.isclose(actual[key], expected[key], rel_tol=1e-7, abs_tol=tolerance), key


words = st.sampled_from([f"w{i}" for i in range(30)])


@UNIT
@given(st.lists(words, max_size=60), st.lists(words, max_size=60))
def test_distribution_merge_adds_counts(left: list[str], right: list[str]) -> None:
    """Merged distributions count every value of both sides, ranked as one would be."""
    merged = Distribution()
    for value in left:
        merged.add(value)
    other = Distribution()
    for value in right:
        other.add(value)
    merged.merge(other)
    assert merged.to_json() == model.distribution(left + right)


@UNIT
@given(
    st.sets(st.integers(0, 1500), max_size=600),
    st.sets(st.integers(0, 1500), max_size=600),
)
def test_distinct_counter_merge_is_a_union(left: set[int], right: set[int]) -> None:
    """Exact while the union has at most 1,024 members, within 2% beyond (SPEC §4)."""
    merged = DistinctCounter()
    for member in left:
        merged.add(("", str(member)))
    other = DistinctCounter()
    for member in right:
        other.add(("", str(member)))
    merged.merge(other)
    union = len(left | right)
    if union <= 1024:
        assert merged.count() == union
    else:
        assert abs(merged.count() - union) <= 0.02 * union


def test_distinct_counter_merge_of_two_sketches() -> None:
    """Two counters past the exact limit merge to the union's size within 2%."""
    left, right = DistinctCounter(), DistinctCounter()
    for index in range(6000):
        left.add(("", f"user-{index}"))
        right.add(("", f"user-{index + 3000}"))
    left.merge(right)
    assert abs(left.count() - 9000) <= 0.02 * 9000


# --- retention and wall-clock completion ------------------------------------------------


@UNIT
@given(
    st.sampled_from(ANCHORS),
    st.sampled_from([0, 6]),
    st.fixed_dictionaries({name: st.integers(1, 5) for name in INTERVALS}),
    st.lists(st.integers(0, 3 * 366 * DAY), min_size=1, max_size=25),
    st.integers(0, 40 * DAY),
)
def test_retention_keeps_the_current_bucket_and_n_minus_one_before(
    anchor: tuple[str, str],
    week_start: int,
    retention: dict[str, int],
    ages: list[int],
    ahead: int,
) -> None:
    """After ``expire(now)`` exactly the buckets from N - 1 periods before now's remain."""
    zone = ZoneInfo(anchor[0])
    now = datetime.fromisoformat(anchor[1]).timestamp() + ahead
    aggregator = Aggregator(Calendar(zone, week_start), 1800.0, Settings(retention=retention))
    items = [
        Interaction(action="view", user_id=f"u{age}", created_at=now - age, received_at=now)
        for age in ages
    ]
    aggregator.apply(items)
    aggregator.expire(now)
    for interval in INTERVALS:
        cutoff = model.retention_cutoff(zone, week_start, interval, now, retention[interval])
        starts = {model.period_start(zone, week_start, interval, item.created_at) for item in items}
        assert list(aggregator.buckets[interval]) == sorted(s for s in starts if s >= cutoff), (
            interval
        )
    assert aggregator.all_time.total == len(items)


def test_expire_completes_a_session_whose_deadline_passed_by_a_fraction_of_a_second() -> None:
    """SPEC §3: a session completes once the clock passes its newest arrival + delay."""
    aggregator = Aggregator(Calendar(ZoneInfo("UTC")), 60.0, Settings())
    view = Interaction(action="view", user_id="u", created_at=1000.0, received_at=1000.5)
    aggregator.apply([view])
    assert aggregator.expire(1060.25) == 0, "the deadline 1060.5 has not passed yet"
    assert aggregator.expire(1060.75) == 1, "the deadline 1060.5 has passed"
    assert aggregator.all_time.completed == 1


def test_arrival_at_the_deadline_completes_the_session_first() -> None:
    """An interaction arriving exactly at the deadline opens a new session (wall-clock rule)."""
    aggregator = Aggregator(Calendar(ZoneInfo("UTC")), 60.0, Settings())
    first = Interaction(action="view", user_id="u", created_at=1000.0, received_at=1000.0)
    second = Interaction(action="view", user_id="u", created_at=1001.0, received_at=1060.0)
    aggregator.apply([first, second])
    assert aggregator.all_time.started == 2
    assert aggregator.all_time.completed == 1
    assert aggregator.all_time.duration.to_json()["max"] == 0.0
