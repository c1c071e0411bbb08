"""Calendar buckets in the configured time zone (SPEC §4).

Computing calendar boundaries with ``zoneinfo`` costs microseconds, so they are computed
once per 15-minute cell of epoch time and cached: today every zone's offset is a multiple
of 15 minutes, so all instants of one cell share every bucket start. A cell that a
boundary cuts (historical local mean times such as +00:53:28) is not cached and is
computed per instant instead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final

INTERVALS: Final = ("hourly", "daily", "weekly", "monthly", "quarterly", "yearly")
"""Calendar intervals, finest first; ``allTime`` is the one bucket outside the calendar."""
ALL_TIME: Final = "allTime"

CELL_SECONDS: Final = 900
EARLIEST: Final = datetime(1000, 1, 1, tzinfo=UTC).timestamp()
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
"""Bucket arithmetic stays within these years, as timestamps do (SPEC §1 allows any age;
the calendar needs room on both sides)."""
EARLIEST_DAY: Final = date(1000, 1, 1).toordinal()
LATEST_DAY: Final = date(9000, 1, 1).toordinal()
EARLIEST_DAY_INDEX: Final = 1000 * 12
LATEST_DAY_INDEX: Final = 9000 * 12
MAX_SHIFT_HOURS: Final = 2
"""The largest clock change in the zone database (double summer time) is two hours."""
CACHE_LIMIT: Final = 200_000

Starts = tuple[float, ...]
"""Bucket start (epoch seconds) for each of :data:`INTERVALS`, in that order."""


class Calendar:
    """Bucket boundaries for one time zone and week start.

    ``week_start`` is a weekday number: 0 for Monday (the default), 6 for Sunday.
    """

    def __init__(self, zone: tzinfo, week_start: int = 0) -> None:
        self.zone = zone
        self.week_start = week_start
        self._cache: dict[int, Starts] = {}

    def starts(self, t: float) -> Starts:
        """The start of the bucket containing ``t`` for every interval: O(1) when cached."""
        cell = int(t // CELL_SECONDS)
        found = self._cache.get(cell)
        if found is None:
            first = cell * CELL_SECONDS
            found = self._compute(first)
            if found != self._compute(first + CELL_SECONDS - 1):
                return self._compute(t)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[cell] = found
        return found

    def start(self, interval: str, t: float) -> float:
        return self.starts(t)[INTERVALS.index(interval)]

    def end(self, interval: str, start: float) -> float:
        """The exclusive end of the bucket that begins at ``start``."""
        if interval == "hourly":
            # The next whole hour of the local clock: an hour later, or later still
            # when a 30-minute daylight-saving change makes one hour 90 minutes long.
            probe = start + 3600
            while (following := self.start("hourly", probe)) <= start:
                probe += CELL_SECONDS
            return following
        return self.shift(interval, start, 1)

    def shift(self, interval: str, start: float, periods: int) -> float:
        """The start of the bucket ``periods`` buckets after (or before, when negative) the
        one beginning at ``start``, clamped to the years 1000 to 9000: O(1).

        Hourly shifts count 3,600 seconds per period, so across a daylight-saving change
        a shift of many hours can land one bucket off.
        """
        if interval == "hourly":
            if periods == 1:
                # The next whole hour of the local clock: an hour later, or later still
                # when a 30-minute daylight-saving change makes one hour 90 minutes long.
                probe = start + 3600
                while (following := self.start("hourly", probe)) <= start:
                    probe += CELL_SECONDS
                return following
            return self.start("hourly", min(max(start + periods * 3600, EARLIEST), LATEST))
        _, day = self._day_start(start)
        return self._midnight(_shift_day(interval, day, periods))

    def previous(self, interval: str, start: float) -> float:
        """The start of the bucket just before the one beginning at ``start``."""
        return self.start(interval, start - 1)

    def label(self, t: float) -> str:
        """ISO 8601 with the zone's offset, as the API shows instants."""
        return datetime.fromtimestamp(t, self.zone).isoformat()

    def _midnight(self, day: date) -> float:
        # fold=0 resolves a skipped midnight to the transition instant and a repeated
        # midnight to its first occurrence: both are when that day begins.
        return datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp()

    def _hour_start(self, t: float) -> float:
        """The latest instant at or before ``t`` at which the local clock showed a whole hour.

        Usually the hour floored; in a repeated hour the right one of the two; when the
        clock was set back from just past a whole hour (St. John's at 00:01), that whole
        hour, up to two hours ahead of the clock; after a 30-minute jump that skipped the
        whole hour, the one before it.
        """
        base = datetime.fromtimestamp(t, self.zone).replace(minute=0, second=0, microsecond=0)
        candidates = [
            hour.replace(fold=fold).timestamp()
            for hour in (base + timedelta(hours=ahead) for ahead in range(MAX_SHIFT_HOURS + 1))
            for fold in (0, 1)
        ]
        passed = [c for c in candidates if c <= t and self._is_whole_hour(c)]
        if passed:
            return max(passed)
        return self._hour_start(min(candidates) - 1)

    def _is_whole_hour(self, t: float) -> bool:
        local = datetime.fromtimestamp(t, self.zone)
        return local.minute == local.second == local.microsecond == 0

    def _day_start(self, t: float) -> tuple[float, date]:
        """The day ``t`` belongs to and when it began: the day whose first midnight came last.

        That is the local date, except after a clock set back across midnight (St. John's
        went from 00:01 back to 23:01): then the new day has begun although the clock shows
        the old date again.
        """
        today = datetime.fromtimestamp(t, self.zone).date()
        tomorrow = today + timedelta(days=1)
        began = self._midnight(tomorrow)
        if began <= t:
            return began, tomorrow
        return self._midnight(today), today

    def _compute(self, t: float) -> Starts:
        day_start, day = self._day_start(t)
        week = day - timedelta(days=(day.weekday() - self.week_start) % 7)
        quarter_month = 3 * ((day.month - 1) // 3) + 1
        return (
            self._hour_start(t),
            day_start,
            self._midnight(week),
            self._midnight(day.replace(day=1)),
            self._midnight(date(day.year, quarter_month, 1)),
            self._midnight(date(day.year, 1, 1)),
        )


def _shift_day(interval: str, day: date, periods: int) -> date:
    """The first day of the period ``periods`` away from the one starting on ``day``."""
    if interval in ("daily", "weekly"):
        days = periods * (7 if interval == "weekly" else 1)
        ordinal = min(max(day.toordinal() + days, EARLIEST_DAY), LATEST_DAY)
        return date.fromordinal(ordinal)
    months = {"monthly": 1, "quarterly": 3, "yearly": 12}[interval]
    index = day.year * 12 + day.month - 1 + periods * months
    index = min(max(index, EARLIEST_DAY_INDEX), LATEST_DAY_INDEX)
    return date(index // 12, index % 12 + 1, 1)
