"""The dashboard side of a cluster: every partition's buckets, merged.

Each partition's owner publishes, once a second, what its flushes merged into each bucket
(a delta) and which buckets it dropped, as numbered entries of the partition's change
stream; now and then it also checkpoints the partition's view, a hash of whole buckets.
A dashboard node keeps a copy of every partition's buckets: it loads each view and
replays the changes after its checkpoint, then follows the change streams, merging each
delta into its copy exactly as the owner merged the same partials into its own bucket.
For every bucket key touched, it merges the copies of all partitions (every statistic has
a ``merge``) and installs the result in an :class:`Aggregator` that never applies an
interaction itself; the dashboard API, the live stream included, reads that aggregator as
in the single process.

A gap in a partition's numbering (a new owner replacing the view, or a failed Redis call)
makes the node load that partition again, view and changes in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import msgspec
import trio
from coredis.response.types import StreamEntry

from engauge.cluster import layout
from engauge.cluster.shared import FAILURES, Redis, as_bytes, as_text, load_settings
from engauge.store import snapshot as snapshots
from engauge.stream.aggregator import Aggregator, AggregatorState, BucketKey, cap_of
from engauge.stream.bucket import Bucket
from engauge.stream.calendar import ALL_TIME, INTERVALS

log = logging.getLogger("engauge.cluster.view")

ENTRIES_AT_ONCE = 1000
BLOCK_MILLISECONDS = 1000
RETRY_SECONDS = 1.0
START = b"0-0"
_start = itemgetter(0)


class Gap(Exception):
    """A partition's changes skip a number: its copy must be loaded again."""


class ClusterView:
    """Keeps ``aggregator`` equal to the merge of all ``partitions``' buckets."""

    def __init__(self, redis: Redis, partitions: int, aggregator: Aggregator) -> None:
        self.redis = redis
        self.aggregator = aggregator
        self.ready = False
        """Every partition's view has been loaded once."""
        self._buckets: list[dict[BucketKey, Bucket]] = [{} for _ in range(partitions)]
        self._counts = [(0, 0)] * partitions
        self._sequences = [0] * partitions
        self._read_to = [START] * partitions
        self._settings_read_to = START
        self._merged: dict[BucketKey, Bucket] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load every partition, then follow the change streams until cancelled; after a
        failed Redis call, load everything again."""
        await self._load_all()
        self.ready = True
        task_status.started()
        while True:
            try:
                await self._follow()
            except FAILURES as error:
                log.warning("following the cluster failed (will load it again): %s", error)
                await trio.sleep(RETRY_SECONDS)
                await self._load_all()

    async def _load_all(self) -> None:
        while True:
            try:
                newest = await self.redis.xrevrange(layout.SETTINGS_CHANGES, "+", "-", count=1)
                self._settings_read_to = as_bytes(newest[0].identifier) if newest else START
                await self._follow_settings()
                touched: set[BucketKey] = set()
                for number in range(len(self._buckets)):
                    touched |= await self._load(number)
                self._merge(touched, everything=True)
                return
            except FAILURES as error:
                log.warning("loading the cluster's views failed (will retry): %s", error)
                await trio.sleep(RETRY_SECONDS)

    async def _follow(self) -> None:
        streams = {layout.changes(n): after for n, after in enumerate(self._read_to)}
        streams[layout.SETTINGS_CHANGES] = self._settings_read_to
        found = await self.redis.xread(streams, count=ENTRIES_AT_ONCE, block=BLOCK_MILLISECONDS)
        touched: set[BucketKey] = set()
        for key, entries in (found or {}).items():
            name = as_text(key)
            if name == layout.SETTINGS_CHANGES:
                self._settings_read_to = as_bytes(entries[-1].identifier)
                await self._follow_settings()
                continue
            number = int(name.rsplit(":", 1)[1])
            try:
                touched |= self._replay(number, entries, following=True)
            except Gap:
                touched |= await self._load(number)
        self._merge(touched)

    async def _follow_settings(self) -> None:
        settings = await load_settings(self.redis)
        if settings != self.aggregator.settings:
            self.aggregator.update_settings(settings)

    async def _load(self, number: int) -> set[BucketKey]:
        """A partition's view and the changes after its checkpoint, read in one
        transaction; returns the keys of the buckets it had or has now."""
        before = set(self._buckets[number])
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                reading_view = pipe.hgetall(layout.view(number))
                reading_changes = pipe.xrange(layout.changes(number), "-", "+")
            stored, entries = await reading_view, await reading_changes
            self._sequences[number] = int(stored.pop(layout.SEQUENCE_FIELD.encode(), b"0"))
            counts = stored.pop(layout.COUNTS_FIELD.encode(), None)
            applied, duplicates = msgspec.msgpack.decode(counts) if counts else (0, 0)
            self._counts[number] = (applied, duplicates)
            self._buckets[number] = {
                layout.bucket_key(as_text(name)): bucket
                for name, value in stored.items()
                if (bucket := _decoded(number, name, value)) is not None
            }
            self._read_to[number] = START
            try:
                touched = self._replay(number, entries, following=False)
            except Gap:  # a new owner is replacing the view: read it again shortly
                await trio.sleep(RETRY_SECONDS)
                continue
            return before | set(self._buckets[number]) | touched

    def _replay(
        self, number: int, entries: Sequence[StreamEntry], *, following: bool
    ) -> set[BucketKey]:
        """Apply a partition's changes in order. Loading a view, the changes it already
        includes are skipped; following, every change must be the next one — anything
        else (a new owner, numbers that went back because Redis lost writes, an entry
        that cannot be read) raises :class:`Gap`, and the partition is loaded again."""
        touched: set[BucketKey] = set()
        for entry in entries:
            self._read_to[number] = as_bytes(entry.identifier)
            values = entry.field_values
            try:
                sequence = int(values[b"sequence"])
                if sequence <= self._sequences[number] and not following:
                    continue
                if sequence != self._sequences[number] + 1 or b"delta" not in values:
                    raise Gap
                delta = msgspec.msgpack.decode(as_bytes(values[b"delta"]))
                touched |= self._apply(number, delta)
            except (KeyError, ValueError, TypeError, msgspec.DecodeError) as error:
                log.error("partition %d: change %s unreadable: %s", number, entry, error)
                raise Gap from error
            self._sequences[number] = sequence
        return touched

    def _apply(self, number: int, delta: dict[str, Any]) -> set[BucketKey]:
        """Repeat the owner's steps on this node's copy of the partition (see
        :class:`engauge.cluster.owner.Changes`)."""
        buckets = self._buckets[number]
        applied, duplicates = delta["counts"]
        self._counts[number] = (applied, duplicates)
        touched: set[BucketKey] = set()
        for partial, fields in delta["steps"]:
            keys = [layout.bucket_key(field) for field in fields]
            touched.update(keys)
            if partial is None:
                for key in keys:
                    buckets.pop(key, None)
                continue
            merged = _decoded(number, fields[0], partial)
            if merged is None:
                continue
            for key in keys:
                bucket = buckets.get(key)
                if bucket is None:
                    bucket = buckets[key] = Bucket(profile_cap=cap_of(key))
                bucket.merge(merged)
        return touched

    def _merge(self, touched: set[BucketKey], everything: bool = False) -> None:
        """Merge the touched bucket keys across partitions; install the result."""
        if not touched and not everything:
            return
        for key in touched:
            found = [buckets[key] for buckets in self._buckets if key in buckets]
            if not found:
                self._merged.pop(key, None)
                continue
            merged = Bucket(profile_cap=cap_of(key))
            for bucket in found:
                merged.merge(bucket)
            self._merged[key] = merged
        self._install()

    def _install(self) -> None:
        all_time = Bucket(profile_cap=cap_of((ALL_TIME, 0.0)))
        buckets: dict[str, list[tuple[float, Bucket]]] = {name: [] for name in INTERVALS}
        for (interval, start), bucket in self._merged.items():
            if interval == ALL_TIME:
                all_time = bucket
            elif interval in buckets:
                buckets[interval].append((start, bucket))
        # The view's aggregator never applies interactions: restoring is how it is shown.
        self.aggregator.restore(
            AggregatorState(
                all_time=all_time,
                buckets={name: sorted(found, key=_start) for name, found in buckets.items()},
                sessions={},
                dedup={},
                applied=sum(applied for applied, _ in self._counts),
                duplicates=sum(duplicates for _, duplicates in self._counts),
            )
        )


def _decoded(number: int, name: bytes | str, value: bytes | str) -> Bucket | None:
    try:
        return snapshots.decode_value(as_bytes(value), Bucket)
    except snapshots.SnapshotError as error:
        log.error("partition %d: bucket %s skipped: %s", number, as_text(name), error)
        return None
