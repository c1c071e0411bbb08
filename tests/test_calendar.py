"""Calendar buckets (SPEC §4): periods in the configured zone, DST days of 23 and 25 hours.

Expected instants are written out as local ISO times with their offsets, so each test reads
as the calendar fact it checks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engauge.stream.calendar import INTERVALS, Calendar

settings.register_profile("engauge-calendar", max_examples=300, deadline=None)
CALENDAR = settings.get_profile("engauge-calendar")

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600
DAY = 24 * HOUR


def at(text: str) -> float:
    """Epoch seconds of an ISO time that carries its offset."""
    return datetime.fromisoformat(text).timestamp()


def bounds(calendar: Calendar, interval: str, t: float) -> tuple[float, float]:
    start = calendar.start(interval, t)
    return start, calendar.end(interval, start)


def test_spring_forward_day_is_23_hours() -> None:
    """2026-03-29 in Berlin skips 02:00-03:00."""
    start, end = bounds(Calendar(BERLIN), "daily", at("2026-03-29T12:00:00+02:00"))
    assert start == at("2026-03-29T00:00:00+01:00")
    assert end == at("2026-03-30T00:00:00+02:00")
    assert end - start == 23 * HOUR


def test_fall_back_day_is_25_hours() -> None:
    """2026-10-25 in Berlin has 02:00-03:00 twice."""
    start, end = bounds(Calendar(BERLIN), "daily", at("2026-10-25T12:00:00+01:00"))
    assert start == at("2026-10-25T00:00:00+02:00")
    assert end == at("2026-10-26T00:00:00+01:00")
    assert end - start == 25 * HOUR


def test_repeated_hour_gives_two_hourly_buckets() -> None:
    """02:30 CEST and 02:30 CET are an hour apart and belong to different buckets."""
    calendar = Calendar(BERLIN)
    first = bounds(calendar, "hourly", at("2026-10-25T02:30:00+02:00"))
    second = bounds(calendar, "hourly", at("2026-10-25T02:30:00+01:00"))
    assert first == (at("2026-10-25T02:00:00+02:00"), at("2026-10-25T02:00:00+01:00"))
    assert second == (at("2026-10-25T02:00:00+01:00"), at("2026-10-25T03:00:00+01:00"))


def test_hour_before_the_gap_ends_where_the_next_begins() -> None:
    """01:00-02:00 CET is followed directly by 03:00 CEST: no empty or long hour."""
    calendar = Calendar(BERLIN)
    start, end = bounds(calendar, "hourly", at("2026-03-29T01:59:59+01:00"))
    assert start == at("2026-03-29T01:00:00+01:00")
    assert end == at("2026-03-29T03:00:00+02:00")
    assert end - start == HOUR
    assert calendar.start("hourly", end) == end


@pytest.mark.parametrize(
    ("week_start", "instant", "expected_start", "expected_end"),
    [
        # Friday 2026-12-04: Monday 11-30 or Sunday 11-29.
        (0, "2026-12-04T10:00:00+01:00", "2026-11-30T00:00:00+01:00", "2026-12-07T00:00:00+01:00"),
        (6, "2026-12-04T10:00:00+01:00", "2026-11-29T00:00:00+01:00", "2026-12-06T00:00:00+01:00"),
        # Sunday 2026-10-25 (fall back): last day of a Monday week, first of a Sunday week.
        (0, "2026-10-25T23:00:00+01:00", "2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00"),
        (6, "2026-10-25T00:00:00+02:00", "2026-10-25T00:00:00+02:00", "2026-11-01T00:00:00+01:00"),
        # Sunday just before midnight, Monday at midnight.
        (0, "2026-12-06T23:59:59+01:00", "2026-11-30T00:00:00+01:00", "2026-12-07T00:00:00+01:00"),
        (0, "2026-12-07T00:00:00+01:00", "2026-12-07T00:00:00+01:00", "2026-12-14T00:00:00+01:00"),
        (6, "2026-12-05T23:59:59+01:00", "2026-11-29T00:00:00+01:00", "2026-12-06T00:00:00+01:00"),
    ],
)
def test_weeks_start_on_the_configured_day(
    week_start: int, instant: str, expected_start: str, expected_end: str
) -> None:
    start, end = bounds(Calendar(BERLIN, week_start), "weekly", at(instant))
    assert (start, end) == (at(expected_start), at(expected_end))


@pytest.mark.parametrize(
    ("interval", "instant", "expected_start", "expected_end"),
    [
        (
            "monthly",
            "2026-12-31T23:59:59+01:00",
            "2026-12-01T00:00:00+01:00",
            "2027-01-01T00:00:00+01:00",
        ),
        (
            "quarterly",
            "2026-12-31T23:59:59+01:00",
            "2026-10-01T00:00:00+02:00",
            "2027-01-01T00:00:00+01:00",
        ),
        (
            "yearly",
            "2026-12-31T23:59:59+01:00",
            "2026-01-01T00:00:00+01:00",
            "2027-01-01T00:00:00+01:00",
        ),
        (
            "monthly",
            "2027-01-01T00:00:00+01:00",
            "2027-01-01T00:00:00+01:00",
            "2027-02-01T00:00:00+01:00",
        ),
        (
            "quarterly",
            "2027-01-01T00:00:00+01:00",
            "2027-01-01T00:00:00+01:00",
            "2027-04-01T00:00:00+02:00",
        ),
        (
            "yearly",
            "2027-01-01T00:00:00+01:00",
            "2027-01-01T00:00:00+01:00",
            "2028-01-01T00:00:00+01:00",
        ),
        (
            "quarterly",
            "2026-03-31T23:59:59+02:00",
            "2026-01-01T00:00:00+01:00",
            "2026-04-01T00:00:00+02:00",
        ),
        (
            "quarterly",
            "2026-04-01T00:00:00+02:00",
            "2026-04-01T00:00:00+02:00",
            "2026-07-01T00:00:00+02:00",
        ),
        (
            "quarterly",
            "2026-09-30T12:00:00+02:00",
            "2026-07-01T00:00:00+02:00",
            "2026-10-01T00:00:00+02:00",
        ),
        (
            "monthly",
            "2028-02-29T12:00:00+01:00",
            "2028-02-01T00:00:00+01:00",
            "2028-03-01T00:00:00+01:00",
        ),
        (
            "daily",
            "2026-12-31T23:59:59+01:00",
            "2026-12-31T00:00:00+01:00",
            "2027-01-01T00:00:00+01:00",
        ),
        (
            "hourly",
            "2026-12-31T23:59:59+01:00",
            "2026-12-31T23:00:00+01:00",
            "2027-01-01T00:00:00+01:00",
        ),
    ],
)
def test_period_boundaries_and_ends(
    interval: str, instant: str, expected_start: str, expected_end: str
) -> None:
    """Month, quarter and year boundaries in local time; ``end`` is the next period's start."""
    start, end = bounds(Calendar(BERLIN), interval, at(instant))
    assert (start, end) == (at(expected_start), at(expected_end))


def test_previous_bucket_across_the_gap() -> None:
    """The hour before 03:00 CEST is 01:00 CET; the day before 03-30 is the 23-hour day."""
    calendar = Calendar(BERLIN)
    assert calendar.previous("hourly", at("2026-03-29T03:00:00+02:00")) == at(
        "2026-03-29T01:00:00+01:00"
    )
    assert calendar.previous("daily", at("2026-03-30T00:00:00+02:00")) == at(
        "2026-03-29T00:00:00+01:00"
    )


def test_a_day_that_begins_at_one_in_the_morning() -> None:
    """Sao Paulo skipped midnight on 2018-11-04: the day begins at 01:00, 23 hours long."""
    start, end = bounds(
        Calendar(ZoneInfo("America/Sao_Paulo")), "daily", at("2018-11-04T12:00:00-02:00")
    )
    assert start == at("2018-11-04T01:00:00-02:00")
    assert end - start == 23 * HOUR


def test_historical_local_mean_time_buckets_hold_their_instants() -> None:
    """Berlin kept +00:53:28 until 1893: backfilled events still land in their own hour/day."""
    calendar = Calendar(BERLIN)
    t = at("1890-06-01T00:10:00+00:53:28")
    assert bounds(calendar, "daily", t) == (
        at("1890-06-01T00:00:00+00:53:28"),
        at("1890-06-02T00:00:00+00:53:28"),
    )
    assert bounds(calendar, "hourly", t) == (
        at("1890-06-01T00:00:00+00:53:28"),
        at("1890-06-01T01:00:00+00:53:28"),
    )


def test_half_hour_dst_change_keeps_hourly_buckets_non_empty() -> None:
    """Lord Howe Island falls back from +11:00 to +10:30: the hour after must still contain t."""
    calendar = Calendar(ZoneInfo("Australia/Lord_Howe"))
    t = at("2026-04-05T01:45:00+10:30")
    start, end = bounds(calendar, "hourly", t)
    assert start <= t < end


ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Africa/Monrovia",
]
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(2100, 1, 1, tzinfo=UTC).timestamp()


def offset(zone: ZoneInfo, second: int) -> object:
    return datetime.fromtimestamp(second, zone).utcoffset()


@lru_cache(maxsize=2048)
def transitions(zone: ZoneInfo, year: int) -> list[int]:
    """The instants in ``year`` at which the zone's UTC offset changes, to the second."""
    first = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    found = []
    for day in range(366):
        low, high = first + day * DAY, first + (day + 1) * DAY
        if offset(zone, low) == offset(zone, high):
            continue
        while high - low > 1:
            middle = (low + high) // 2
            if offset(zone, middle) == offset(zone, low):
                low = middle
            else:
                high = middle
        found.append(high)
    return found


@st.composite
def instants(draw: st.DrawFn, zone: ZoneInfo) -> float:
    """Instants anywhere in 1900-2100, or within two hours of one of the zone's offset changes.

    Uniform draws almost never land in the few minutes around a change, where calendar
    arithmetic goes wrong if it goes wrong at all.
    """
    if draw(st.integers(0, 3)) == 0:
        return draw(st.floats(EARLIEST, LATEST))
    year = draw(st.integers(1900, 2099))
    changes = transitions(zone, year)
    if not changes:
        return draw(st.floats(EARLIEST, LATEST))
    change = draw(st.sampled_from(changes))
    near = draw(st.sampled_from([-7200, -3600, -1800, -60, -1, 0, 1, 60, 1800, 2700, 3600, 5400]))
    return change + near + draw(st.integers(0, 59))


@CALENDAR
@given(
    st.sampled_from(ZONES)
    .map(ZoneInfo)
    .flatmap(lambda zone: st.tuples(st.just(zone), instants(zone))),
    st.sampled_from([0, 6]),
)
def test_every_instant_is_inside_its_bucket(
    zone_and_instant: tuple[ZoneInfo, float], week_start: int
) -> None:
    """start <= t < end, and the bucket's start and end are bucket starts themselves."""
    zone, t = zone_and_instant
    calendar = Calendar(zone, week_start)
    local = datetime.fromtimestamp(t, zone).isoformat()
    for interval in INTERVALS:
        start, end = bounds(calendar, interval, t)
        assert start <= t < end, (interval, local, start, end)
        assert calendar.start(interval, start) == start, (interval, local)
        assert calendar.start(interval, end) == end, (interval, local)
