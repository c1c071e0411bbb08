"""Mergeable statistic values: every one has ``add``, ``merge`` and a JSON rendering.

``merge`` is what lets a batch be counted once into a partial bucket and then folded into
every interval, and what will let partitions be combined on read.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, cast

import datasketches
from attrs import define, field

from engauge.stream.shapes import DistributionJson, NumberStatsJson


@define(slots=True)
class NumberStats:
    """Count, sum, mean, min, max and sample variance of a stream of numbers.

    Mean and the sum of squared deviations (``m2``) follow Welford's update and Chan's
    parallel merge, so the variance stays accurate over long streams of similar values.
    """

    count: int = 0
    sum: float = 0.0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def add(self, value: float) -> None:
        """Add one value in O(1)."""
        self.count += 1
        self.sum += value
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    @classmethod
    def of_counts(cls, counts: Mapping[float, int]) -> NumberStats:
        """The statistics of each value repeated its count of times, in O(distinct values).

        Two passes (the mean first, then the squared deviations from it), each summed
        exactly with ``fsum``: as accurate as Welford's update, at C speed per value.
        """
        count = sum(counts.values())
        if not count:
            return cls()
        total = _exact_sum([value * times for value, times in counts.items()])
        mean = total / count
        squares = [(value - mean) * (value - mean) * times for value, times in counts.items()]
        m2 = _exact_sum(squares)
        return cls(count, total, mean, m2, min(counts), max(counts))

    def copy(self) -> NumberStats:
        return NumberStats(self.count, self.sum, self.mean, self.m2, self.min, self.max)

    def merge(self, other: NumberStats) -> None:
        """Fold ``other`` into this one in O(1)."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.sum, self.mean = other.count, other.sum, other.mean
            self.m2, self.min, self.max = other.m2, other.min, other.max
            return
        count = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / count
        self.m2 += other.m2 + delta * delta * self.count * other.count / count
        self.count = count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def to_json(self) -> NumberStatsJson:
        """SPEC §5: mean/min/max ``null`` when empty; variance/stdDev ``null`` below two values."""
        empty = self.count == 0
        variance = max(self.m2, 0.0) / (self.count - 1) if self.count > 1 else None
        return {
            "count": self.count,
            "sum": _finite(self.sum),
            "mean": None if empty else _finite(self.mean),
            "min": None if empty else _finite(self.min),
            "max": None if empty else _finite(self.max),
            "variance": _finite(variance),
            "stdDev": None if variance is None else _finite(math.sqrt(variance)),
        }


def _exact_sum(values: list[float]) -> float:
    """``fsum``, or where the sum leaves a float's range the plain one: infinite or NaN, as
    adding one by one gives, which the JSON rendering shows as ``null``."""
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return sum(values)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


DISTRIBUTION_TOP = 100
"""Values listed in a distribution's JSON; the rest are summed into ``other``."""
DISTRIBUTION_KEEP = 1000
"""Values a distribution keeps exact counts for after folding."""
DISTRIBUTION_FOLD_AT = 2 * DISTRIBUTION_KEEP
"""Distinct values that trigger a fold, so folding is amortised over many adds."""


def _rank(item: tuple[Hashable, int]) -> tuple[int, str, str]:
    value, count = item
    return (-count, type(value).__name__, str(value))


@define(slots=True)
class Distribution:
    """Counts of values, exact up to 2,000 distinct values, bounded beyond.

    When more distinct values arrive, the 1,000 most frequent are kept and the others'
    counts move to ``folded`` (reported within ``other``). Rankings of values far more
    frequent than the tail stay exact; ``distinct`` becomes an upper estimate.
    """

    counts: dict[Hashable, int] = field(factory=dict)
    total: int = 0
    folded: int = 0
    folded_distinct: int = 0

    def add(self, value: Hashable, count: int = 1) -> None:
        """Count ``value`` in O(1) amortised."""
        counts = self.counts
        counts[value] = counts.get(value, 0) + count
        self.total += count
        if len(counts) > DISTRIBUTION_FOLD_AT:
            self._fold()

    def copy(self) -> Distribution:
        """An independent copy, at C speed."""
        return Distribution(dict(self.counts), self.total, self.folded, self.folded_distinct)

    def merge(self, other: Distribution) -> None:
        """Fold ``other`` in: O(its distinct values), at C speed into an empty one."""
        if not other.total:
            return
        mine = self.counts
        if mine:
            get = mine.get
            for value, count in other.counts.items():
                mine[value] = get(value, 0) + count
        else:
            self.counts = dict(other.counts)
        self.total += other.total
        self.folded += other.folded
        self.folded_distinct += other.folded_distinct
        if len(self.counts) > DISTRIBUTION_FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        ranked = sorted(self.counts.items(), key=_rank)
        for _, count in ranked[DISTRIBUTION_KEEP:]:
            self.folded += count
        self.folded_distinct += len(ranked) - DISTRIBUTION_KEEP
        self.counts = dict(ranked[:DISTRIBUTION_KEEP])

    def top(self, limit: int = DISTRIBUTION_TOP) -> list[tuple[Hashable, int]]:
        """The ``limit`` most frequent values, by count descending then value ascending."""
        return sorted(self.counts.items(), key=_rank)[:limit]

    def to_json(self) -> DistributionJson:
        top = self.top()
        total = self.total
        listed = sum(count for _, count in top)
        return {
            "total": total,
            "distinct": len(self.counts) + self.folded_distinct,
            "mode": cast(str | bool, top[0][0]) if top else None,
            "values": [
                {"value": cast(str | bool, value), "count": count, "percentage": count / total}
                for value, count in top
            ],
            "other": total - listed,
        }


EXACT_DISTINCT = 1024
"""Distinct counts are exact up to this many members, then a HyperLogLog estimate."""
HLL_LG_K = 14
"""2^14 registers: about 0.8 % relative standard error (2 % at 2.5 sigma) in about 8 KB."""


def _sketch_key(member: tuple[str, ...]) -> str:
    # Length-prefixed parts: an unambiguous encoding of the tuple for hashing. A user is a
    # pair, the hot case, spelled out: the same string, built faster.
    if len(member) == 2:
        first, second = member
        return f"{len(first)}:{first}{len(second)}:{second}"
    return "".join(f"{len(part)}:{part}" for part in member)


def _update(sketch: Any, members: Iterable[tuple[str, ...]]) -> None:
    update = sketch.update
    for key in map(_sketch_key, members):
        update(key)


UNION_ABOVE = 128
"""Members above which merging an exact counter into a sketch goes through a sketch of
them (built once, however many sketches take it) and a union, instead of one update per
member and sketch."""


@define(slots=True)
class DistinctCounter:
    """Number of distinct tuples: an exact set while small, then a HyperLogLog sketch.

    While exact, ``sketch`` may hold a sketch of the members, built when they were merged
    into a sketch and dropped when they change: a partial bucket's counter is merged into
    seven buckets, and each member is hashed once instead of seven times. Snapshots store
    the members alone.
    """

    members: set[tuple[str, ...]] | None = field(factory=set)
    sketch: Any = None

    @classmethod
    def of(cls, members: Iterable[tuple[str, ...]]) -> DistinctCounter:
        """A counter of ``members``: the set is built at C speed, O(n)."""
        counter = cls(members=set(members))
        if len(counter.members or ()) > EXACT_DISTINCT:
            counter._to_sketch()
        return counter

    def add(self, member: tuple[str, ...]) -> None:
        members = self.members
        if members is not None:
            members.add(member)
            self.sketch = None
            if len(members) > EXACT_DISTINCT:
                self._to_sketch()
        else:
            self.sketch.update(_sketch_key(member))

    def copy(self) -> DistinctCounter:
        """An independent copy: O(members), or O(sketch size)."""
        if self.members is not None:
            return DistinctCounter(set(self.members))
        return DistinctCounter(
            None, type(self.sketch).deserialize(self.sketch.serialize_updatable())
        )

    def merge(self, other: DistinctCounter) -> None:
        """Fold ``other`` in: O(its members) while both are exact or ``other`` is small,
        O(sketch size) otherwise."""
        members, theirs = self.members, other.members
        if members is not None and theirs is not None:
            if len(members) + len(theirs) > EXACT_DISTINCT:
                members = members | theirs
            else:
                members |= theirs
            if len(members) <= EXACT_DISTINCT:
                self.members, self.sketch = members, None
                return
        if self.members is not None:
            self._to_sketch()
        if theirs is None:
            self._union(other.sketch)
        elif len(theirs) > UNION_ABOVE:
            self._union(other._members_sketch())
        else:
            _update(self.sketch, theirs)

    def _to_sketch(self) -> None:
        self.sketch = self._members_sketch()
        self.members = None

    def _members_sketch(self) -> Any:
        if self.sketch is None:
            self.sketch = datasketches.hll_sketch(HLL_LG_K)
            _update(self.sketch, self.members or ())
        return self.sketch

    def _union(self, sketch: Any) -> None:
        union = datasketches.hll_union(HLL_LG_K)
        union.update(self.sketch)
        union.update(sketch)
        self.sketch = union.get_result()

    def count(self) -> int:
        if self.members is not None:
            return len(self.members)
        return round(float(self.sketch.get_estimate()))
