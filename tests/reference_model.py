"""A deliberately plain model of SPEC §1 (de-duplication), §3 (sessions), §4 (buckets), §5.

It exists to check ``engauge.stream`` against: everything is recomputed from plain lists,
with no sketches, no incremental statistics and no use of engauge's ``Calendar``, so each
figure can be read next to the SPEC sentence it implements. Only the ``Interaction``
record is shared with engauge, as the input type.

Assumptions where the SPEC leaves room (stated here so a reader can challenge them):

- A session's group (userType, deviceType, sessionType) is that of the interaction that
  opened it.
- A late interaction (rule 4) is not part of any session, so it does not move the
  session's wall-clock deadline.
- "Accepted within the last 24 hours" includes exactly 24 hours, and a refused duplicate
  does not renew the window (it was not accepted).
- Entries, exits and bounces are counted for real origins only; the absent origin ("", "")
  counts as one origin for ``bounced`` but has no origin profile.
"""

from __future__ import annotations

import calendar
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from engauge.stream.interaction import Interaction

DAY = 24 * 3600
DEDUP_SECONDS = DAY
INTERVALS = ("hourly", "daily", "weekly", "monthly", "quarterly", "yearly")
ALL_TIME = "allTime"
TOP = 100


# --- calendar (SPEC §4) ---------------------------------------------------------------


def local_date(zone: tzinfo, second: int) -> date:
    return datetime.fromtimestamp(second, zone).date()


@lru_cache(maxsize=100_000)
def day_start(zone: tzinfo, day: date) -> int:
    """The first whole second whose local date is ``day`` or later, found by bisection.

    Searching instead of building ``datetime(day, tzinfo=zone)`` sidesteps every question
    of folds and gaps: the day begins when the local calendar first shows it.
    """
    guess = calendar.timegm(day.timetuple())
    low, high = guess - 2 * DAY, guess + 2 * DAY
    while high - low > 1:
        middle = (low + high) // 2
        if local_date(zone, middle) >= day:
            high = middle
        else:
            low = middle
    return high


def hour_start(zone: tzinfo, t: float) -> int:
    """Local wall-clock minutes and seconds removed: right for zones with whole-hour DST."""
    second = math.floor(t)
    local = datetime.fromtimestamp(second, zone)
    return second - local.minute * 60 - local.second


def first_day(interval: str, day: date, week_start: int) -> date:
    """The first local date of the period of ``interval`` that contains ``day``."""
    if interval == "daily":
        return day
    if interval == "weekly":
        while day.weekday() != week_start:
            day -= timedelta(days=1)
        return day
    if interval == "monthly":
        return day.replace(day=1)
    if interval == "quarterly":
        day = day.replace(day=1)
        while day.month not in (1, 4, 7, 10):
            day = (day - timedelta(days=1)).replace(day=1)
        return day
    if interval == "yearly":
        return date(day.year, 1, 1)
    raise ValueError(interval)


def period_start(zone: tzinfo, week_start: int, interval: str, t: float) -> int:
    """Epoch second at which the ``interval`` bucket containing ``t`` starts."""
    if interval == "hourly":
        return hour_start(zone, t)
    day = datetime.fromtimestamp(math.floor(t), zone).date()
    return day_start(zone, first_day(interval, day, week_start))


def period_end(zone: tzinfo, week_start: int, interval: str, t: float) -> int:
    """Epoch second at which the ``interval`` bucket containing ``t`` ends (the next starts)."""
    if interval == "hourly":
        return hour_start(zone, t) + 3600
    day = first_day(interval, datetime.fromtimestamp(math.floor(t), zone).date(), week_start)
    return day_start(zone, shift_day(interval, day, 1))


def shift_day(interval: str, day: date, periods: int) -> date:
    """``day`` (a period's first day) moved by whole periods; negative goes back."""
    if interval == "daily":
        return day + timedelta(days=periods)
    if interval == "weekly":
        return day + timedelta(days=7 * periods)
    months = {"monthly": 1, "quarterly": 3, "yearly": 12}[interval] * periods
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def retention_cutoff(zone: tzinfo, week_start: int, interval: str, now: float, keep: int) -> int:
    """Start of the oldest kept bucket: the current one and ``keep - 1`` before it."""
    if interval == "hourly":
        return hour_start(zone, now) - 3600 * (keep - 1)
    day = first_day(interval, datetime.fromtimestamp(math.floor(now), zone).date(), week_start)
    return day_start(zone, shift_day(interval, day, -(keep - 1)))


# --- de-duplication (SPEC §1) and sessions (SPEC §3) ---------------------------------


def deduplicate(interactions: list[Interaction]) -> list[Interaction]:
    """Drop an interaction whose ``id`` was accepted within the 24 hours before its receipt."""
    accepted_at: dict[str, list[float]] = {}
    kept = []
    for item in interactions:
        if item.id:
            earlier = accepted_at.setdefault(item.id, [])
            if any(item.received_at - seen <= DEDUP_SECONDS for seen in earlier):
                continue
            earlier.append(item.received_at)
        kept.append(item)
    return kept


@dataclass
class Session:
    """A session as SPEC §3 describes it: its interactions, in arrival order."""

    opener: Interaction
    members: list[Interaction]
    start: float
    last: float
    deadline: float

    def join(self, item: Interaction, delay: float) -> None:
        self.members.append(item)
        self.start = min(self.start, item.created_at)
        self.last = max(self.last, item.created_at)
        self.deadline = item.received_at + delay

    @property
    def duration(self) -> float:
        return self.last - self.start

    @property
    def bounced(self) -> bool:
        """Exactly one distinct origin; the absent origin ("", "") is an origin too."""
        return len({item.origin for item in self.members}) == 1

    @property
    def converted(self) -> bool:
        return any(item.action == "conversion" for item in self.members)

    @property
    def entry(self) -> tuple[str, str]:
        """Origin of the earliest event time; ``min`` keeps the first arrival on ties."""
        return min(self.members, key=lambda item: item.created_at).origin

    @property
    def exit(self) -> tuple[str, str]:
        """Origin of the latest event time; on ties the later arrival wins."""
        latest = self.members[0]
        for item in self.members:
            if item.created_at >= latest.created_at:
                latest = item
        return latest.origin

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.opener.user_type, self.opener.device_type, self.opener.session_type)


@dataclass
class Outcome:
    """What happened to a stream: accepted interactions, sessions, late interactions."""

    accepted: list[Interaction]
    sessions: list[Session]
    completed: list[Session]
    late: list[Interaction]


def run(interactions: list[Interaction], now: float, delay: float) -> Outcome:
    """Apply SPEC §3 rules 1-4 in arrival order, with wall-clock completion, then ``now``."""
    accepted = deduplicate(interactions)
    outcome = Outcome(accepted, [], [], [])
    open_sessions: dict[tuple[str, str], Session] = {}
    for item in accepted:
        t = item.created_at
        session = open_sessions.get(item.user)
        if session is not None and (
            item.received_at >= session.deadline or t > session.last + delay
        ):
            outcome.completed.append(open_sessions.pop(item.user))
            session = None
        if session is None:
            session = Session(item, [item], t, t, item.received_at + delay)
            open_sessions[item.user] = session
            outcome.sessions.append(session)
        elif t < session.start - delay:
            outcome.late.append(item)
        else:
            session.join(item, delay)
    for session in open_sessions.values():
        if session.deadline <= now:
            outcome.completed.append(session)
    return outcome


# --- buckets (SPEC §4) ----------------------------------------------------------------


@dataclass
class Contents:
    """What one bucket holds, as lists."""

    interactions: list[Interaction] = field(default_factory=list)
    opened: list[Session] = field(default_factory=list)
    completed: list[Session] = field(default_factory=list)
    late: list[Interaction] = field(default_factory=list)


def bucket_keys(zone: tzinfo, week_start: int, t: float) -> list[tuple[str, int | None]]:
    """(interval, start) of every bucket containing ``t``; allTime has start ``None``."""
    keys: list[tuple[str, int | None]] = [(ALL_TIME, None)]
    keys.extend((name, period_start(zone, week_start, name, t)) for name in INTERVALS)
    return keys


def bucket_contents(
    outcome: Outcome, zone: tzinfo, week_start: int
) -> dict[str, dict[int | None, Contents]]:
    """Every bucket of every interval; sessions go where their opener's event time is."""
    buckets: dict[str, dict[int | None, Contents]] = {ALL_TIME: {}}
    buckets.update({name: {} for name in INTERVALS})

    def contents_at(t: float) -> list[Contents]:
        found = []
        for name, start in bucket_keys(zone, week_start, t):
            found.append(buckets[name].setdefault(start, Contents()))
        return found

    for item in outcome.accepted:
        for contents in contents_at(item.created_at):
            contents.interactions.append(item)
    for session in outcome.sessions:
        for contents in contents_at(session.opener.created_at):
            contents.opened.append(session)
    for session in outcome.completed:
        for contents in contents_at(session.opener.created_at):
            contents.completed.append(session)
    for item in outcome.late:
        for contents in contents_at(item.created_at):
            contents.late.append(item)
    return buckets


# --- figures (SPEC §5) ----------------------------------------------------------------


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def number_stats(values: list[float]) -> dict[str, Any]:
    """NumberStats from the ``statistics`` module: sample variance, nulls when undefined."""
    count = len(values)
    return {
        "count": count,
        "sum": math.fsum(values),
        "mean": statistics.fmean(values) if count else None,
        "min": min(values) if count else None,
        "max": max(values) if count else None,
        "variance": statistics.variance(values) if count > 1 else None,
        "stdDev": statistics.stdev(values) if count > 1 else None,
    }


def distribution(values: list[Any]) -> dict[str, Any]:
    """Exact counts, ranked by count descending then value ascending, top 100 listed."""
    counts = Counter(values)
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    listed = ranked[:TOP]
    total = len(values)
    return {
        "total": total,
        "distinct": len(counts),
        "mode": listed[0][0] if listed else None,
        "values": [
            {"value": value, "count": count, "percentage": count / total} for value, count in listed
        ],
        "other": total - sum(count for _, count in listed),
    }


def amount(item: Interaction) -> float | None:
    """The revenue of a conversion: its numeric ``amount`` property, if any."""
    value = item.properties.get("amount")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def conversions(items: list[Interaction]) -> dict[str, Any]:
    converting = [item for item in items if item.action == "conversion"]
    amounts = [a for a in map(amount, converting) if a is not None]
    return {
        "count": len(converting),
        "revenue": math.fsum(amounts),
        "amount": number_stats(amounts),
    }


def carried(items: list[Interaction], attribute: str) -> list[str]:
    """Values of a label field over the interactions that carry it (``""`` is absent)."""
    return [getattr(item, attribute) for item in items if getattr(item, attribute)]


def summary(contents: Contents) -> dict[str, Any]:
    """A summary's figures (without ``sessionStats``/``conversionStats``, compared apart)."""
    items = contents.interactions
    completed = contents.completed
    users = len({item.user for item in items})
    bounced = sum(session.bounced for session in completed)
    converted = sum(session.converted for session in completed)
    money = conversions(items)
    revenue, count = money["revenue"], money["count"]
    return {
        "total": len(items),
        "users": users,
        "sessions": {
            "started": len(contents.opened),
            "completed": len(completed),
            "late": len(contents.late),
            "bounced": bounced,
            "bounceRate": ratio(bounced, len(completed)),
            "converted": converted,
            "conversionRate": ratio(converted, len(completed)),
            "duration": number_stats([session.duration for session in completed]),
            "interactions": number_stats([float(len(session.members)) for session in completed]),
        },
        "conversions": money,
        "unitMetrics": {
            "revenuePerUser": ratio(revenue, users),
            "revenuePerSession": ratio(revenue, len(contents.opened)),
            "revenuePerConversion": ratio(revenue, count),
            "conversionsPerUser": ratio(count, users),
        },
        "actionStats": distribution([item.action for item in items]),
        "originTypeStats": distribution(carried(items, "origin_type")),
        "entityTypeStats": distribution(carried(items, "entity_type")),
        "userTypeStats": distribution(carried(items, "user_type")),
        "deviceTypeStats": distribution(carried(items, "device_type")),
        "sessionTypeStats": distribution(carried(items, "session_type")),
    }


def session_groups(contents: Contents) -> dict[tuple[str, str, str], dict[str, Any]]:
    """sessionStats keyed by (userType, deviceType, sessionType), completed sessions only."""
    groups: dict[tuple[str, str, str], list[Session]] = {}
    for session in contents.completed:
        groups.setdefault(session.group, []).append(session)
    result = {}
    for key, sessions in groups.items():
        bounced = sum(session.bounced for session in sessions)
        converted = sum(session.converted for session in sessions)
        result[key] = {
            "count": len(sessions),
            "percentage": len(sessions) / len(contents.completed),
            "bounced": bounced,
            "bounceRate": bounced / len(sessions),
            "converted": converted,
            "conversionRate": converted / len(sessions),
            "duration": number_stats([session.duration for session in sessions]),
            "interactions": number_stats([float(len(session.members)) for session in sessions]),
        }
    return result


def conversion_endpoints(contents: Contents) -> dict[tuple[str, ...], dict[str, Any]]:
    """conversionStats keyed by the endpoint tuple."""
    by_endpoint: dict[tuple[str, ...], list[Interaction]] = {}
    for item in contents.interactions:
        if item.action == "conversion":
            by_endpoint.setdefault(item.endpoint, []).append(item)
    return {key: conversions(items) for key, items in by_endpoint.items()}


def origins(contents: Contents) -> dict[tuple[str, str], dict[str, int]]:
    """Per real origin: interactions there, and entries, exits, bounces of completed sessions."""
    result: dict[tuple[str, str], dict[str, int]] = {}

    def row(key: tuple[str, str]) -> dict[str, int]:
        return result.setdefault(key, {"total": 0, "entries": 0, "exits": 0, "bounces": 0})

    for item in contents.interactions:
        if any(item.origin):
            row(item.origin)["total"] += 1
    for session in contents.completed:
        if any(session.entry):
            row(session.entry)["entries"] += 1
            row(session.entry)["bounces"] += session.bounced
        if any(session.exit):
            row(session.exit)["exits"] += 1
    return result


def profiles(contents: Contents, kind: str) -> dict[tuple[str, ...], dict[str, int]]:
    """Per endpoint or real entity: interactions and distinct users."""
    grouped: dict[tuple[str, ...], list[Interaction]] = {}
    for item in contents.interactions:
        key: tuple[str, ...] = item.endpoint if kind == "endpoint" else item.entity
        if kind == "endpoint" or any(key):
            grouped.setdefault(key, []).append(item)
    return {
        key: {"total": len(items), "users": len({item.user for item in items})}
        for key, items in grouped.items()
    }


def properties(contents: Contents) -> dict[str, dict[str, Any]]:
    """Per property: carriers, numbers (numeric values and elements), other values counted."""
    result: dict[str, dict[str, Any]] = {}
    for item in contents.interactions:
        for name, value in item.properties.items():
            row = result.setdefault(name, {"count": 0, "numbers": [], "values": []})
            row["count"] += 1
            for element in value if isinstance(value, list) else [value]:
                if isinstance(element, int | float) and not isinstance(element, bool):
                    row["numbers"].append(element)
                else:
                    row["values"].append((type(element).__name__, element))
    return {
        name: {
            "count": row["count"],
            "numbers": number_stats(row["numbers"]),
            "values": dict(Counter(row["values"])),
        }
        for name, row in result.items()
    }


def expected_view(contents: Contents) -> dict[str, Any]:
    """Everything the tests compare for one bucket."""
    return {
        "summary": summary(contents),
        "sessionStats": session_groups(contents),
        "conversionStats": conversion_endpoints(contents),
        "origins": origins(contents),
        "endpoints": profiles(contents, "endpoint"),
        "entities": profiles(contents, "entity"),
        "properties": properties(contents),
    }
