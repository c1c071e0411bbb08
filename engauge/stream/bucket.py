"""One bucket's statistics (SPEC §5): counts, distributions, sessions and breakdowns.

A bucket is filled by ``add`` (interactions), ``add_session`` (completed sessions) and
``merge`` (another bucket). Derived figures — rates, unit metrics, percentages — are not
stored; :mod:`engauge.stream.summary` computes them on read.
"""

from __future__ import annotations

from typing import Any, TypeVar

from attrs import define, field

from engauge.stream.interaction import Interaction, PropertyValue
from engauge.stream.values import DistinctCounter, Distribution, NumberStats

PROPERTY_CAP = 1000
"""Property names tracked per bucket; further names are not broken down."""
PROFILE_PROPERTY_CAP = 100
"""Property names tracked per endpoint, origin or entity profile."""

SessionGroupKey = tuple[str, str, str]
"""(userType, deviceType, sessionType) of a session."""

V = TypeVar("V", "Conversions", "PropertyStats", "SessionGroup", "Profile")


@define(slots=True)
class Conversions:
    """Conversions and their revenue: the sum of their numeric ``amount`` properties."""

    count: int = 0
    revenue: float = 0.0
    amount: NumberStats = field(factory=NumberStats)

    def add(self, amount: float | None) -> None:
        self.count += 1
        if amount is not None:
            self.revenue += amount
            self.amount.add(amount)

    def merge(self, other: Conversions) -> None:
        self.count += other.count
        self.revenue += other.revenue
        self.amount.merge(other.amount)


Observation = tuple[str, str, tuple[float, ...], tuple[str | bool, ...]]
"""One property of one interaction, classified once: (name, type, numbers, other values)."""


def observe(properties: dict[str, PropertyValue]) -> list[Observation]:
    """Classify an interaction's properties once for the several maps that count them.

    Numbers (and numeric array elements) go to ``numbers``; strings, booleans and string
    array elements to ``values``.
    """
    observed: list[Observation] = []
    for name, value in properties.items():
        kind = type(value)
        if kind is str or kind is bool:
            observed.append((name, _TYPE_NAMES[kind], (), (value,)))  # type: ignore[arg-type]
        elif kind is list:
            elements: list[Any] = value  # type: ignore[assignment]
            numbers = tuple(e for e in elements if type(e) is not str)
            texts = tuple(e for e in elements if type(e) is str)
            observed.append((name, "array", numbers, texts))
        else:
            observed.append((name, "number", (value,), ()))  # type: ignore[arg-type]
    return observed


_TYPE_NAMES: dict[type, str] = {str: "string", bool: "boolean"}


@define(slots=True)
class PropertyStats:
    """One property: how many interactions carry it, its numbers and its other values."""

    count: int = 0
    numbers: NumberStats = field(factory=NumberStats)
    values: Distribution = field(factory=Distribution)
    types: set[str] = field(factory=set)

    def add_observed(
        self, kind: str, numbers: tuple[float, ...], values: tuple[str | bool, ...]
    ) -> None:
        self.count += 1
        self.types.add(kind)
        for number in numbers:
            self.numbers.add(number)
        for value in values:
            self.values.add(value)

    def merge(self, other: PropertyStats) -> None:
        self.count += other.count
        self.numbers.merge(other.numbers)
        self.values.merge(other.values)
        self.types |= other.types


@define(slots=True)
class SessionGroup:
    """Completed sessions of one (userType, deviceType, sessionType)."""

    count: int = 0
    bounced: int = 0
    converted: int = 0
    duration: NumberStats = field(factory=NumberStats)
    interactions: NumberStats = field(factory=NumberStats)

    def add(self, session: CompletedSession) -> None:
        self.count += 1
        self.bounced += session.bounced
        self.converted += session.converted
        self.duration.add(session.duration)
        self.interactions.add(session.interactions)

    def merge(self, other: SessionGroup) -> None:
        self.count += other.count
        self.bounced += other.bounced
        self.converted += other.converted
        self.duration.merge(other.duration)
        self.interactions.merge(other.interactions)


@define(slots=True, frozen=True)
class CompletedSession:
    """What a bucket needs of a session once it has completed (SPEC §3).

    ``opened_at`` is the event time of the interaction that opened the session: the
    session belongs to the buckets containing it.
    """

    opened_at: float
    group: SessionGroupKey
    duration: float
    interactions: int
    bounced: bool
    converted: bool
    entry: tuple[str, str]
    exit: tuple[str, str]


@define(slots=True)
class Profile:
    """An endpoint, origin or entity within one bucket.

    Origins also count sessions that entered (``entries``), left (``exits``) or bounced
    there (``bounces``); the other kinds leave those at zero.
    """

    total: int = 0
    users: DistinctCounter = field(factory=DistinctCounter)
    user_types: Distribution = field(factory=Distribution)
    device_types: Distribution = field(factory=Distribution)
    session_types: Distribution = field(factory=Distribution)
    actions: Distribution = field(factory=Distribution)
    entity_types: Distribution = field(factory=Distribution)
    conversions: Conversions = field(factory=Conversions)
    properties: dict[str, PropertyStats] = field(factory=dict)
    entries: int = 0
    exits: int = 0
    bounces: int = 0

    def add(
        self,
        interaction: Interaction,
        amount: float | None,
        converted: bool,
        observed: list[Observation],
    ) -> None:
        """Count one interaction; ``actions`` and ``entity_types`` are left to the caller,
        since only some kinds of profile need them."""
        count_who(self, interaction)
        if converted:
            self.conversions.add(amount)
        if observed:
            add_properties(self.properties, observed, PROFILE_PROPERTY_CAP)

    def merge(self, other: Profile) -> None:
        self.total += other.total
        self.users.merge(other.users)
        self.user_types.merge(other.user_types)
        self.device_types.merge(other.device_types)
        self.session_types.merge(other.session_types)
        self.actions.merge(other.actions)
        self.entity_types.merge(other.entity_types)
        self.conversions.merge(other.conversions)
        merge_into(self.properties, other.properties, PROFILE_PROPERTY_CAP)
        self.entries += other.entries
        self.exits += other.exits
        self.bounces += other.bounces


def count_who(stats: Profile | Bucket, interaction: Interaction) -> None:
    """Count the interaction and who made it: its user and the labels it carries."""
    stats.total += 1
    stats.users.add(interaction.user)
    if interaction.user_type:
        stats.user_types.add(interaction.user_type)
    if interaction.device_type:
        stats.device_types.add(interaction.device_type)
    if interaction.session_type:
        stats.session_types.add(interaction.session_type)


def add_properties(stats: dict[str, PropertyStats], observed: list[Observation], cap: int) -> None:
    for name, kind, numbers, values in observed:
        found = stats.get(name)
        if found is None:
            if len(stats) >= cap:
                continue
            found = stats[name] = PropertyStats()
        found.add_observed(kind, numbers, values)


def merge_into(into: dict[str, PropertyStats], other: dict[str, PropertyStats], cap: int) -> None:
    """Merge property maps; names beyond ``cap`` are left out, as when adding."""
    for key, value in other.items():
        found = into.get(key)
        if found is None:
            if len(into) >= cap:
                continue
            found = into[key] = PropertyStats()
        found.merge(value)


def conversion_amount(interaction: Interaction) -> tuple[bool, float | None]:
    """(is a conversion, its numeric ``amount`` or ``None``): SPEC §1's special values."""
    if interaction.action != "conversion":
        return False, None
    amount = interaction.properties.get("amount")
    if isinstance(amount, int | float) and not isinstance(amount, bool):
        return True, float(amount)
    return True, None


def entry(mapping: dict[Any, V], key: Any, make: type[V], cap: int) -> V:
    """The value for ``key``, created when new; once ``cap`` keys exist, new keys share
    the ``None`` entry ("other"), so memory stays bounded whatever clients send. O(1)."""
    found = mapping.get(key)
    if found is None:
        if len(mapping) - (None in mapping) >= cap:
            key = None
        found = mapping.get(key)
        if found is None:
            found = mapping[key] = make()
    return found


def merge_entries(into: dict[Any, V], other: dict[Any, V], make: type[V], cap: int) -> None:
    for key, value in other.items():
        entry(into, key, make, cap).merge(value)


DISTRIBUTIONS = (
    "actions",
    "origin_types",
    "entity_types",
    "user_types",
    "device_types",
    "session_types",
)


@define(slots=True)
class Bucket:
    """All statistics of one bucket of one interval.

    ``profile_cap`` bounds the number of endpoints, origins and entities kept; the rest
    are counted together under the key ``None`` (shown as ``other``).
    """

    profile_cap: int = 1000
    total: int = 0
    users: DistinctCounter = field(factory=DistinctCounter)
    started: int = 0
    completed: int = 0
    late: int = 0
    bounced: int = 0
    converted: int = 0
    duration: NumberStats = field(factory=NumberStats)
    session_interactions: NumberStats = field(factory=NumberStats)
    conversions: Conversions = field(factory=Conversions)
    actions: Distribution = field(factory=Distribution)
    origin_types: Distribution = field(factory=Distribution)
    entity_types: Distribution = field(factory=Distribution)
    user_types: Distribution = field(factory=Distribution)
    device_types: Distribution = field(factory=Distribution)
    session_types: Distribution = field(factory=Distribution)
    session_groups: dict[SessionGroupKey | None, SessionGroup] = field(factory=dict)
    conversion_endpoints: dict[tuple[str, ...] | None, Conversions] = field(factory=dict)
    endpoints: dict[Any, Profile] = field(factory=dict)
    origins: dict[Any, Profile] = field(factory=dict)
    entities: dict[Any, Profile] = field(factory=dict)
    properties: dict[str, PropertyStats] = field(factory=dict)

    def add(self, interaction: Interaction) -> None:
        """Count one interaction: O(number of its properties)."""
        count_who(self, interaction)
        action = interaction.action
        self.actions.add(action)
        if interaction.entity_type:
            self.entity_types.add(interaction.entity_type)
        if interaction.origin_type:
            self.origin_types.add(interaction.origin_type)
        converted, amount = conversion_amount(interaction)
        endpoint = interaction.endpoint
        if converted:
            self.conversions.add(amount)
            entry(self.conversion_endpoints, endpoint, Conversions, self.profile_cap).add(amount)
        observed = observe(interaction.properties) if interaction.properties else []
        cap = self.profile_cap
        entry(self.endpoints, endpoint, Profile, cap).add(interaction, amount, converted, observed)
        if interaction.origin_type or interaction.origin_id:
            origin = entry(self.origins, interaction.origin, Profile, cap)
            origin.add(interaction, amount, converted, observed)
            origin.actions.add(action)
            if interaction.entity_type:
                origin.entity_types.add(interaction.entity_type)
        if interaction.entity_type or interaction.entity_id:
            entity = entry(self.entities, interaction.entity, Profile, cap)
            entity.add(interaction, amount, converted, observed)
            entity.actions.add(action)
        if observed:
            add_properties(self.properties, observed, PROPERTY_CAP)

    def add_session(self, session: CompletedSession) -> None:
        """Count one completed session that opened in this bucket."""
        self.completed += 1
        self.bounced += session.bounced
        self.converted += session.converted
        self.duration.add(session.duration)
        self.session_interactions.add(session.interactions)
        cap = self.profile_cap
        entry(self.session_groups, session.group, SessionGroup, cap).add(session)
        if any(session.entry):
            entered = entry(self.origins, session.entry, Profile, cap)
            entered.entries += 1
            entered.bounces += session.bounced
        if any(session.exit):
            entry(self.origins, session.exit, Profile, cap).exits += 1

    def merge(self, other: Bucket) -> None:
        """Fold another bucket's statistics into this one."""
        self.total += other.total
        self.users.merge(other.users)
        self.started += other.started
        self.completed += other.completed
        self.late += other.late
        self.bounced += other.bounced
        self.converted += other.converted
        self.duration.merge(other.duration)
        self.session_interactions.merge(other.session_interactions)
        self.conversions.merge(other.conversions)
        for name in DISTRIBUTIONS:
            getattr(self, name).merge(getattr(other, name))
        cap = self.profile_cap
        merge_entries(self.session_groups, other.session_groups, SessionGroup, cap)
        merge_entries(self.conversion_endpoints, other.conversion_endpoints, Conversions, cap)
        for kind in ("endpoints", "origins", "entities"):
            merge_entries(getattr(self, kind), getattr(other, kind), Profile, cap)
        merge_into(self.properties, other.properties, PROPERTY_CAP)
