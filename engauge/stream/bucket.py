"""One bucket's statistics (SPEC §5): counts, distributions, sessions and breakdowns.

A bucket is filled by ``add_all`` (interactions, counted per endpoint), ``add_session``
(completed sessions) and ``merge`` (another bucket). Derived figures — rates, unit
metrics, percentages — are not stored; :mod:`engauge.stream.summary` computes them on read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any, TypeVar

from attrs import define, field

from engauge.stream.interaction import EndpointKey, Interaction
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

    @classmethod
    def of(cls, interactions: Sequence[Interaction]) -> Conversions:
        """Conversions counted from interactions whose action is ``conversion``."""
        amounts: dict[float, int] = {}
        for interaction in interactions:
            amount = numeric_amount(interaction)
            if amount is not None:
                amounts[amount] = amounts.get(amount, 0) + 1
        numbers = NumberStats.of_counts(amounts)
        return cls(len(interactions), numbers.sum, numbers)

    def copy(self) -> Conversions:
        return Conversions(self.count, self.revenue, self.amount.copy())

    def merge(self, other: Conversions) -> None:
        self.count += other.count
        self.revenue += other.revenue
        self.amount.merge(other.amount)


@define(slots=True)
class PropertyStats:
    """One property: how many interactions carry it, its numbers and its other values."""

    count: int = 0
    numbers: NumberStats = field(factory=NumberStats)
    values: Distribution = field(factory=Distribution)
    types: set[str] = field(factory=set)

    def copy(self) -> PropertyStats:
        return PropertyStats(self.count, self.numbers.copy(), self.values.copy(), set(self.types))

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

    def copy(self) -> SessionGroup:
        return SessionGroup(
            self.count,
            self.bounced,
            self.converted,
            self.duration.copy(),
            self.interactions.copy(),
        )

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

    def copy(self) -> Profile:
        """An independent copy: what a bucket takes for a key it does not have yet, at
        less cost than merging into an empty profile."""
        return Profile(
            self.total,
            self.users.copy(),
            self.user_types.copy(),
            self.device_types.copy(),
            self.session_types.copy(),
            self.actions.copy(),
            self.entity_types.copy(),
            self.conversions.copy(),
            {name: stats.copy() for name, stats in self.properties.items()},
            self.entries,
            self.exits,
            self.bounces,
        )

    def merge(self, other: Profile) -> None:
        """Fold ``other`` in; what ``other`` left empty (for most profiles, some of the
        distributions, conversions or properties) is skipped without a call."""
        self.total += other.total
        self.users.merge(other.users)
        for mine, theirs in (
            (self.user_types, other.user_types),
            (self.device_types, other.device_types),
            (self.session_types, other.session_types),
            (self.actions, other.actions),
            (self.entity_types, other.entity_types),
        ):
            if theirs.total:
                mine.merge(theirs)
        if other.conversions.count:
            self.conversions.merge(other.conversions)
        if other.properties:
            merge_into(self.properties, other.properties, PROFILE_PROPERTY_CAP)
        self.entries += other.entries
        self.exits += other.exits
        self.bounces += other.bounces


def merge_into(into: dict[str, PropertyStats], other: dict[str, PropertyStats], cap: int) -> None:
    """Merge property maps; names beyond ``cap`` are left out, as when adding."""
    for key, value in other.items():
        found = into.get(key)
        if found is not None:
            found.merge(value)
        elif len(into) < cap:
            into[key] = value.copy()


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
    """Merge keyed maps as :func:`entry` files keys: a new key under the cap takes a copy."""
    for key, value in other.items():
        found = into.get(key)
        if found is not None:
            found.merge(value)
        elif len(into) - (None in into) < cap:
            into[key] = value.copy()
        else:
            entry(into, key, make, cap).merge(value)


def adopt(mapping: dict[Any, V], key: Any, value: V, cap: int) -> V:
    """Merge ``value`` into the entry for ``key``; a new key under the cap takes ``value``
    itself, which the caller must not change afterwards. O(1) then, O(size of value) else."""
    if key in mapping or len(mapping) - (None in mapping) >= cap:
        found = entry(mapping, key, type(value), cap)
        found.merge(value)
        return found
    mapping[key] = value
    return value


_endpoint_of = attrgetter("action", "entity_type", "entity_id", "origin_type", "origin_id")
_user_of = attrgetter("user_type", "user_id")
_labels_of = attrgetter("user_type", "device_type", "session_type")
_properties_of = attrgetter("properties")
_name_of = itemgetter(0)
_value_of = itemgetter(1)


def group_by_endpoint(
    groups: dict[EndpointKey, list[Interaction]], interactions: Iterable[Interaction]
) -> None:
    """File each interaction under its endpoint in ``groups``: O(1) per interaction."""
    for interaction in interactions:
        key = _endpoint_of(interaction)
        group = groups.get(key)
        if group is None:
            groups[key] = [interaction]
        else:
            group.append(interaction)


def endpoint_tally(interactions: Sequence[Interaction], converted: bool) -> Profile:
    """The profile of one endpoint's interactions (``converted``: its action is
    ``conversion``), counted in a few passes of C-level iteration; ``actions`` and
    ``entity_types`` are left to the caller, since only some kinds of profile need them."""
    user_types, device_types, session_types = label_distributions(interactions)
    return Profile(
        total=len(interactions),
        users=DistinctCounter.of(map(_user_of, interactions)),
        user_types=user_types,
        device_types=device_types,
        session_types=session_types,
        conversions=Conversions.of(interactions) if converted else Conversions(),
        properties=property_tally(interactions),
    )


def label_distributions(
    interactions: Sequence[Interaction],
) -> tuple[Distribution, Distribution, Distribution]:
    """The user, device and session types the interactions carry, as distributions."""
    user_types, device_types, session_types = Distribution(), Distribution(), Distribution()
    for labels, count in Counter(map(_labels_of, interactions)).items():
        user_type, device_type, session_type = labels
        if user_type:
            user_types.add(user_type, count)
        if device_type:
            device_types.add(device_type, count)
        if session_type:
            session_types.add(session_type, count)
    return user_types, device_types, session_types


_TYPE_NAMES: dict[type, str] = {str: "string", bool: "boolean"}


def property_tally(interactions: Sequence[Interaction]) -> dict[str, PropertyStats]:
    """The properties of interactions, counted once per distinct (name, type, value).

    Scalars are counted by ``Counter`` at C speed (the type is part of the key, since
    ``True == 1``); arrays, which cannot be counted so, one by one. Numbers (and numeric
    array elements) go to ``numbers``; strings, booleans and string elements to ``values``.
    """
    found_in = list(map(_properties_of, interactions))
    values = list(chain.from_iterable(map(dict.values, found_in)))
    arrays: list[tuple[str, list[Any]]] = []
    try:
        scalars = Counter(_typed(chain.from_iterable(found_in), values))
    except TypeError:  # an array among the values
        pairs = list(chain.from_iterable(map(dict.items, found_in)))
        arrays = [pair for pair in pairs if type(pair[1]) is list]
        others = [pair for pair in pairs if type(pair[1]) is not list]
        scalars = Counter(_typed(map(_name_of, others), list(map(_value_of, others))))
    stats: dict[str, PropertyStats] = {}
    numbers: dict[str, dict[float, int]] = {}
    for (name, kind, value), count in scalars.items():
        found = stats.get(name) or stats.setdefault(name, PropertyStats())
        found.count += count
        found.types.add(_TYPE_NAMES.get(kind, "number"))
        if kind is str or kind is bool:
            found.values.add(value, count)
        else:
            _count(numbers, name, value, count)
    for name, elements in arrays:
        found = stats.get(name) or stats.setdefault(name, PropertyStats())
        found.count += 1
        found.types.add("array")
        for element in elements:
            if type(element) is str:
                found.values.add(element)
            else:
                _count(numbers, name, element, 1)
    for name, counts in numbers.items():
        stats[name].numbers = NumberStats.of_counts(counts)
    return stats


def _count(numbers: dict[str, dict[float, int]], name: str, value: float, count: int) -> None:
    counts = numbers.get(name)
    if counts is None:
        counts = numbers[name] = {}
    counts[value] = counts.get(value, 0) + count


def _typed(names: Iterable[str], values: list[Any]) -> Iterator[tuple[str, type, Any]]:
    """(name, type, value) of each property, built at C speed without item tuples."""
    return zip(names, map(type, values), values, strict=True)


def numeric_amount(interaction: Interaction) -> float | None:
    """The revenue of a conversion (SPEC §1): its numeric ``amount``, else ``None``."""
    amount = interaction.properties.get("amount")
    if isinstance(amount, int | float) and not isinstance(amount, bool):
        return float(amount)
    return None


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

    def add_all(self, interactions: Iterable[Interaction]) -> None:
        """Count interactions: O(n + their properties), mostly at C speed."""
        groups: dict[EndpointKey, list[Interaction]] = {}
        group_by_endpoint(groups, interactions)
        self.add_groups(groups.items())

    def add_groups(self, groups: Iterable[tuple[EndpointKey, Sequence[Interaction]]]) -> None:
        """Count interactions grouped by endpoint (see :func:`group_by_endpoint`).

        Each group is counted once (:func:`endpoint_tally`), and the tally is merged into
        its endpoint, origin and entity and into this bucket: the work per interaction is
        a few steps of C-level iteration, the work per group a few merges.
        """
        for key, group in groups:
            self._add_endpoint(key, endpoint_tally(group, converted=key[0] == "conversion"))

    def _add_endpoint(self, key: EndpointKey, tally: Profile) -> None:
        action, entity_type, entity_id, origin_type, origin_id = key
        total = tally.total
        self.total += total
        self.users.merge(tally.users)
        self.user_types.merge(tally.user_types)
        self.device_types.merge(tally.device_types)
        self.session_types.merge(tally.session_types)
        self.actions.add(action, total)
        if entity_type:
            self.entity_types.add(entity_type, total)
        if origin_type:
            self.origin_types.add(origin_type, total)
        cap = self.profile_cap
        if tally.conversions.count:
            self.conversions.merge(tally.conversions)
            entry(self.conversion_endpoints, key, Conversions, cap).merge(tally.conversions)
        adopt(self.endpoints, key, tally, cap)
        if origin_type or origin_id:
            origin = entry(self.origins, (origin_type, origin_id), Profile, cap)
            origin.merge(tally)
            origin.actions.add(action, total)
            if entity_type:
                origin.entity_types.add(entity_type, total)
        if entity_type or entity_id:
            entity = entry(self.entities, (entity_type, entity_id), Profile, cap)
            entity.merge(tally)
            entity.actions.add(action, total)
        merge_into(self.properties, tally.properties, PROPERTY_CAP)

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
