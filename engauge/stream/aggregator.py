"""The aggregator: the single writer of all statistics.

Interactions arrive in batches, in journal order. Each meets its user's session at once
and waits, grouped by endpoint, in the pending cell of its hour. Every 50,000 waiting
interactions, the cells count them into their partial buckets in one go (per endpoint,
mostly at C speed: see :meth:`Bucket.add_groups`); :meth:`Aggregator.flush` merges the
partials into the bucket of every enabled interval. Flushing happens before every read,
every second and after 250,000 interactions, so the per-interaction work does not
multiply by seven while readers still see every applied interaction. Readers run between
batches and so always see a consistent state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from attrs import define
from sortedcontainers import SortedDict

from engauge.stream.bucket import Bucket, CompletedSession, Profile, group_by_endpoint
from engauge.stream.calendar import ALL_TIME, INTERVALS, Calendar, Starts
from engauge.stream.dedup import DedupWindow
from engauge.stream.interaction import EndpointKey, Interaction, UserKey, key_id
from engauge.stream.sessions import Session, Sessions, Touch
from engauge.stream.settings import Settings

BUCKET_PROFILE_CAP = 1000
"""Endpoints, origins and entities kept per calendar bucket (the rest are "other")."""
ALL_TIME_PROFILE_CAP = 10_000
"""Endpoints, origins and entities kept in the all-time bucket."""

COUNT_AFTER = 50_000
"""Interactions waiting in cells that trigger counting them into the cells' partial
buckets: it bounds the memory they hold (about 1 KB each, 50 MB at most)."""
FLUSH_AFTER = 250_000
"""Interactions in partial buckets that trigger a flush without waiting for a read or a
tick. Merging costs per distinct key, not per interaction: under load, merging less
often than counting does the same merges for several times as many interactions."""

PROFILE_MAPS = {"endpoint": "endpoints", "origin": "origins", "entity": "entities"}

BucketKey = tuple[str, float]
"""(interval, start) of a bucket; the all-time bucket's is ``(ALL_TIME, 0.0)``."""
ALL_TIME_KEY: BucketKey = (ALL_TIME, 0.0)

HOURLY = range(1)
"""The index of the hourly interval in :data:`INTERVALS`."""
DAILY_AND_COARSER = range(1, len(INTERVALS))


class PendingCell:
    """What one hour has gathered since the last flush (its 15-minute calendar cells share
    every bucket start, so they share a pending cell): interactions not yet counted,
    grouped by endpoint, and a partial bucket with what is counted, including the
    sessions that started, were late or completed in it."""

    __slots__ = ("arrived", "groups", "partial")

    def __init__(self) -> None:
        self.arrived: list[Interaction] = []
        self.groups: dict[EndpointKey, list[Interaction]] = {}
        self.partial = Bucket(profile_cap=ALL_TIME_PROFILE_CAP)

    def file_arrived(self) -> None:
        """Group the interactions of the batch just applied, while they are still in the
        processor's cache: a second pass over them then costs little."""
        group_by_endpoint(self.groups, self.arrived)
        self.arrived = []

    def count(self) -> None:
        """Count the waiting interactions into the partial bucket."""
        self.partial.add_groups(self.groups.items())
        self.groups = {}


class FlushObserver(Protocol):
    """Told what each flush does to the buckets, in order: a cluster node publishes it, so
    that dashboard nodes repeat the same merges on their copies of the buckets."""

    def merged(self, partial: Bucket, keys: list[BucketKey]) -> None:
        """``partial`` was merged into the buckets at ``keys`` (created when new); it may
        change after the call returns."""

    def dropped(self, key: BucketKey) -> None:
        """The bucket at ``key`` was dropped."""


def cap_of(key: BucketKey) -> int:
    """The profile cap of the bucket at ``key``."""
    return ALL_TIME_PROFILE_CAP if key[0] == ALL_TIME else BUCKET_PROFILE_CAP


@define
class AggregatorState:
    """Everything an aggregator holds, as plain typed values: what a snapshot stores.

    It refers to the live objects rather than copying them (copying a million sessions
    would pause ingestion for seconds), so it is only consistent while the aggregator does
    not change: snapshots take it and write it from a forked process, where nothing does.
    """

    all_time: Bucket
    buckets: dict[str, list[tuple[float, Bucket]]]
    sessions: dict[UserKey, Session]
    dedup: dict[str, float]
    applied: int
    duplicates: int


class Aggregator:
    """All statistics, open sessions and the de-duplication window.

    ``session_delay`` is the session gap in seconds. Time enters only through the
    interactions' own timestamps and the ``now`` given to :meth:`expire`.
    """

    def __init__(self, calendar: Calendar, session_delay: float, settings: Settings) -> None:
        self.calendar = calendar
        self.settings = settings
        self.sessions = Sessions(session_delay)
        self.dedup = DedupWindow()
        self._all_time = Bucket(profile_cap=ALL_TIME_PROFILE_CAP)
        self._buckets: dict[str, SortedDict] = {name: SortedDict() for name in INTERVALS}
        self._pending: dict[Starts, PendingCell] = {}
        self._waiting = 0
        self._pending_count = 0
        self.version = 0
        """Grows whenever the statistics change: readers cache by it."""
        self.applied = 0
        """Interactions counted (duplicates excluded)."""
        self.duplicates = 0
        self._enabled = self._enabled_indexes()
        self._ids: dict[str, dict[str, tuple[str, ...] | None]] = {
            kind: {} for kind in PROFILE_MAPS
        }
        self.observer: FlushObserver | None = None

    def apply(self, batch: Iterable[Interaction]) -> None:
        """Apply a batch of interactions, in order: O(1) per interaction here, and
        O(1) per interaction and property when :meth:`flush` counts them."""
        starts_of = self.calendar.starts
        touch = self.sessions.touch
        is_duplicate = self.dedup.is_duplicate
        cell_at = self._pending.get
        applied = 0
        for interaction in batch:
            if interaction.id and is_duplicate(interaction.id, interaction.received_at):
                self.duplicates += 1
                continue
            starts = starts_of(interaction.created_at)
            cell = cell_at(starts) or self._cell(starts)
            cell.arrived.append(interaction)
            how, completed = touch(interaction)
            if how is Touch.OPENED:
                cell.partial.started += 1
            elif how is Touch.LATE:
                cell.partial.late += 1
            if completed is not None:
                self._complete(completed)
            applied += 1
        for cell in self._pending.values():
            cell.file_arrived()
        self.applied += applied
        self._waiting += applied
        self._pending_count += applied
        self.version += 1
        if self._pending_count >= FLUSH_AFTER:
            self.flush()
        elif self._waiting >= COUNT_AFTER:
            self._count_waiting()

    def flush(self) -> None:
        """Count the pending cells and merge them into every enabled interval's buckets.

        Each pending cell is one hour (cells of one hour share every bucket start). Each
        goes to its hourly bucket; then the hours of one day are merged into one partial
        (O(distinct keys) each), which goes to the daily and every coarser bucket, since
        a day lies within one week, month, quarter and year. When several hours are
        pending (under load, in a replay), that saves most of the merges into the six
        coarser intervals.
        """
        self._count_waiting()
        hours = [(starts, cell.partial) for starts, cell in self._pending.items()]
        for starts, partial in hours:
            self._merge(partial, self._buckets_for(starts, HOURLY))
        for starts, partial in _per_day(hours):
            self._all_time.merge(partial)
            self._merge(partial, self._buckets_for(starts, DAILY_AND_COARSER), ALL_TIME_KEY)
        self._pending.clear()
        self._pending_count = 0

    def _count_waiting(self) -> None:
        for cell in self._pending.values():
            cell.count()
        self._waiting = 0

    @property
    def all_time(self) -> Bucket:
        self.flush()
        return self._all_time

    @property
    def buckets(self) -> dict[str, SortedDict]:
        """Per interval, bucket start → bucket, oldest first."""
        self.flush()
        return self._buckets

    def state(self) -> AggregatorState:
        """The whole state, flushed (see :class:`AggregatorState`)."""
        self.flush()
        return AggregatorState(
            all_time=self._all_time,
            buckets={name: list(buckets.items()) for name, buckets in self._buckets.items()},
            sessions=self.sessions.open,
            dedup=self.dedup.seen,
            applied=self.applied,
            duplicates=self.duplicates,
        )

    def _merge(
        self, partial: Bucket, buckets: Iterable[tuple[BucketKey, Bucket]], *merged: BucketKey
    ) -> None:
        """Merge ``partial`` into ``buckets``; tell the observer, with the keys ``merged``
        into already."""
        keys = list(merged)
        for key, bucket in buckets:
            bucket.merge(partial)
            keys.append(key)
        if self.observer is not None and keys:
            self.observer.merged(partial, keys)

    def every_bucket(self) -> dict[BucketKey, Bucket]:
        """Every bucket by key, all-time included: a cluster node's whole publication."""
        self.flush()
        every = {ALL_TIME_KEY: self._all_time}
        for name, buckets in self._buckets.items():
            for start, bucket in buckets.items():
                every[(name, start)] = bucket
        return every

    def bucket_at(self, key: BucketKey) -> Bucket | None:
        """The bucket at ``key``, if there is one."""
        name, start = key
        if name == ALL_TIME:
            return self.all_time
        found: Bucket | None = self.buckets[name].get(start)
        return found

    def restore(self, state: AggregatorState) -> None:
        """Take over a stored state; this aggregator must not have applied anything yet."""
        self._all_time = state.all_time
        enabled = {name for _, name in self._enabled}
        for name, buckets in state.buckets.items():
            if name in enabled:
                self._buckets[name] = SortedDict(buckets)
        self.sessions.restore(state.sessions)
        self.dedup.seen = state.dedup
        self.applied = state.applied
        self.duplicates = state.duplicates
        self.version += 1

    def expire(self, now: float) -> int:
        """Complete the sessions due by ``now`` and drop buckets past retention."""
        completed = self.sessions.expire(now)
        for session in completed:
            self._complete(session)
        self.flush()
        dropped = self._drop_expired_buckets(now)
        if completed or dropped:
            self.version += 1
        return len(completed)

    def end_session(self, user: UserKey) -> bool:
        """Complete ``user``'s open session now (an erasure); whether there was one."""
        session = self.sessions.open.pop(user, None)
        if session is None:
            return False
        self._complete(session.completed())
        self.version += 1
        return True

    def update_settings(self, settings: Settings) -> None:
        """Take new settings: a disabled interval's buckets are dropped to free memory."""
        self.flush()
        self.settings = settings
        self._enabled = self._enabled_indexes()
        for name in INTERVALS:
            if not settings.stats_toggles[name]:
                if self.observer is not None:
                    for start in self._buckets[name]:
                        self.observer.dropped((name, start))
                self._buckets[name].clear()
        self.version += 1

    def bucket(self, interval: str, at: float) -> tuple[float | None, float | None, Bucket]:
        """(start, end, bucket) of the bucket containing ``at``; an empty one if none."""
        if interval == ALL_TIME:
            return None, None, self.all_time
        start = self.calendar.start(interval, at)
        found = self.buckets[interval].get(start)
        return start, self.calendar.end(interval, start), found or Bucket()

    def bucket_starts(self, interval: str, start: float, end: float) -> Iterator[float]:
        """Every bucket start from the bucket containing ``start`` up to ``end``."""
        current = self.calendar.start(interval, start)
        while current < end:
            yield current
            current = self.calendar.end(interval, current)

    def profiles(self, kind: str, bucket: Bucket | None = None) -> dict[Any, Profile]:
        """The endpoint, origin or entity profiles of a bucket (all-time by default)."""
        return getattr(bucket or self.all_time, PROFILE_MAPS[kind])  # type: ignore[no-any-return]

    def profile_key(self, kind: str, profile_id: str) -> tuple[str, ...] | None:
        """The identity tuple with this id among the all-time profiles; ``KeyError`` if none."""
        ids = self._ids[kind]
        profiles = self.profiles(kind)
        if len(ids) != len(profiles):
            ids.clear()
            for key in profiles:
                ids["other" if key is None else key_id(kind, key)] = key
        return ids[profile_id]

    def _complete(self, session: CompletedSession) -> None:
        self._cell(self.calendar.starts(session.opened_at)).partial.add_session(session)

    def _cell(self, starts: Starts) -> PendingCell:
        cell = self._pending.get(starts)
        if cell is None:
            cell = self._pending[starts] = PendingCell()
        return cell

    def _buckets_for(self, starts: Starts, intervals: range) -> Iterator[tuple[BucketKey, Bucket]]:
        """The buckets at ``starts`` of the enabled ones among ``intervals`` (indexes into
        :data:`INTERVALS`), with their keys, created when new."""
        for index, name in self._enabled:
            if index not in intervals:
                continue
            buckets = self._buckets[name]
            start = starts[index]
            bucket = buckets.get(start)
            if bucket is None:
                bucket = buckets[start] = Bucket(profile_cap=BUCKET_PROFILE_CAP)
            yield (name, start), bucket

    def _enabled_indexes(self) -> tuple[tuple[int, str], ...]:
        return tuple(
            (index, name)
            for index, name in enumerate(INTERVALS)
            if self.settings.stats_toggles[name]
        )

    def _drop_expired_buckets(self, now: float) -> int:
        dropped = 0
        for _, name in self._enabled:
            buckets = self._buckets[name]
            cutoff = self.retention_cutoff(name, now)
            while buckets and buckets.peekitem(0)[0] < cutoff:
                start, _ = buckets.popitem(0)
                if self.observer is not None:
                    self.observer.dropped((name, start))
                dropped += 1
        return dropped

    def retention_cutoff(self, interval: str, now: float) -> float:
        """The start of the oldest bucket retention keeps: the current one and N - 1 before."""
        current = self.calendar.start(interval, now)
        return self.calendar.shift(interval, current, 1 - self.settings.retention[interval])


def _per_day(hours: list[tuple[Starts, Bucket]]) -> list[tuple[Starts, Bucket]]:
    """One partial per day: the first hour's, with the day's other hours merged into it."""
    days: dict[Starts, tuple[Starts, Bucket]] = {}
    for starts, partial in hours:
        first = days.get(starts[1:])
        if first is None:
            days[starts[1:]] = (starts, partial)
        else:
            first[1].merge(partial)
    return list(days.values())
