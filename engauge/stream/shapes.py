"""The JSON shapes of the statistics (SPEC §5), as typed dictionaries.

The renderings in :mod:`engauge.stream.values`, :mod:`engauge.stream.summary` and
:mod:`engauge.stream.settings` are annotated with these types, so the type checker holds the
code to them; the API reference (``GET /openapi.json``) is generated from the same types,
so the document cannot drift from what the code returns.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

Ratio = float | None
"""A quotient, ``null`` when its denominator is zero (SPEC §5: never NaN or Infinity)."""


class NumberStatsJson(TypedDict):
    """Mean, min and max are ``null`` when empty; variance and stdDev below two values."""

    count: int
    sum: float | None
    mean: float | None
    min: float | None
    max: float | None
    variance: float | None
    stdDev: float | None


class DistributionValue(TypedDict):
    value: str | bool
    count: int
    percentage: float


class DistributionJson(TypedDict):
    """The 100 most frequent values, by count descending then value; the rest in ``other``."""

    total: int
    distinct: int
    mode: str | bool | None
    values: list[DistributionValue]
    other: int


class ConversionsJson(TypedDict):
    count: int
    revenue: float | None
    amount: NumberStatsJson


class CompletedSessions(TypedDict):
    """What completed sessions add up to: in a summary, and in each group of them."""

    bounced: int
    bounceRate: Ratio
    converted: int
    conversionRate: Ratio
    duration: NumberStatsJson
    interactions: NumberStatsJson


class SessionFigures(CompletedSessions):
    started: int
    completed: int
    late: int


class UnitMetrics(TypedDict):
    revenuePerUser: Ratio
    revenuePerSession: Ratio
    revenuePerConversion: Ratio
    conversionsPerUser: Ratio


class SummaryFigures(TypedDict):
    """The numbers of a summary: what charts plot and the live stream sends."""

    total: int
    users: int
    sessions: SessionFigures
    conversions: ConversionsJson
    unitMetrics: UnitMetrics


class SessionGroupJson(CompletedSessions):
    """Completed sessions of one group; labels are ``null`` for the groups beyond the cap."""

    userType: str | None
    deviceType: str | None
    sessionType: str | None
    count: int
    percentage: Ratio


class ConversionEndpointJson(ConversionsJson):
    endpoint: str


class SummaryStats(SummaryFigures):
    """Every figure of one bucket, breakdowns included."""

    actionStats: DistributionJson
    originTypeStats: DistributionJson
    entityTypeStats: DistributionJson
    userTypeStats: DistributionJson
    deviceTypeStats: DistributionJson
    sessionTypeStats: DistributionJson
    sessionStats: list[SessionGroupJson]
    conversionStats: list[ConversionEndpointJson]


class PropertyJson(TypedDict):
    count: int
    numbers: NumberStatsJson
    values: DistributionJson


class ProfileFigures(TypedDict):
    """The numbers of an endpoint, origin or entity; the session figures are origins' only."""

    total: int
    users: int
    conversions: ConversionsJson
    entries: NotRequired[int]
    exits: NotRequired[int]
    bounces: NotRequired[int]
    bounceRate: NotRequired[Ratio]


class ProfileJson(ProfileFigures):
    """A whole profile; ``actionStats`` for origins and entities, ``entityTypeStats`` for
    origins."""

    userTypeStats: DistributionJson
    deviceTypeStats: DistributionJson
    sessionTypeStats: DistributionJson
    propertyStats: dict[str, PropertyJson]
    actionStats: NotRequired[DistributionJson]
    entityTypeStats: NotRequired[DistributionJson]


class Identity(TypedDict):
    """What names a profile: its ``id`` and the fields of its kind (``null`` for "other")."""

    id: str
    action: NotRequired[str | None]
    entityType: NotRequired[str | None]
    entityID: NotRequired[str | None]
    originType: NotRequired[str | None]
    originID: NotRequired[str | None]


class Toggles(TypedDict):
    hourly: bool
    daily: bool
    weekly: bool
    monthly: bool
    quarterly: bool
    yearly: bool


class Retention(TypedDict):
    """Buckets kept per interval; ``interactions``: days raw interactions are kept."""

    hourly: int
    daily: int
    weekly: int
    monthly: int
    quarterly: int
    yearly: int
    interactions: int


class SettingsJson(TypedDict):
    statsToggles: Toggles
    interactions: bool
    retention: Retention
