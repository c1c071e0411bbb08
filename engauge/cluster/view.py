"""The dashboard side of a cluster: every partition's published buckets, merged.

Each partition's owner keeps a hash of its buckets in Redis and announces what it changed
on one capped stream, with a sequence number per partition. A dashboard node loads every
hash at start, then follows the announcements: it fetches the changed buckets, merges
each bucket key across the partitions (every statistic has a ``merge``), and installs the
result in an :class:`Aggregator` that never applies an interaction itself. The dashboard
API, the live stream included, reads that aggregator exactly as in the single process.

A gap in a partition's sequence (announcements trimmed while the node was behind), a new
owner's full publication, or a failed Redis call makes the node reload whole hashes; a
bucket is always fetched whole, so applying an announcement twice changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from operator import itemgetter

import msgspec
import trio
from coredis.response.types import StreamEntry

from engauge.cluster import layout
from engauge.cluster.shared import FAILURES, Redis, as_bytes, as_text, load_settings
from engauge.store import snapshot as snapshots
from engauge.stream.aggregator import (
    ALL_TIME_PROFILE_CAP,
    BUCKET_PROFILE_CAP,
    Aggregator,
    AggregatorState,
)
from engauge.stream.bucket import Bucket
from engauge.stream.calendar import ALL_TIME, INTERVALS

log = logging.getLogger("engauge.cluster.view")

NOTICES_AT_ONCE = 1000
BLOCK_MILLISECONDS = 1000
RETRY_SECONDS = 1.0
_start = itemgetter(0)


class ClusterView:
    """Keeps ``aggregator`` equal to the merge of all ``partitions`` as published."""

    def __init__(self, redis: Redis, partitions: int, aggregator: Aggregator) -> None:
        self.redis = redis
        self.aggregator = aggregator
        self.ready = False
        """Every partition's view has been loaded once."""
        self._buckets: list[dict[str, Bucket]] = [{} for _ in range(partitions)]
        self._counts = [(0, 0)] * partitions
        self._sequences = [0] * partitions
        self._merged: dict[str, Bucket] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load every partition's view, then follow the announcements until cancelled."""
        after = await self._load_all()
        self.ready = True
        task_status.started()
        while True:
            try:
                found = await self.redis.xread(
                    {layout.UPDATES: after}, count=NOTICES_AT_ONCE, block=BLOCK_MILLISECONDS
                )
                notices = (found or {}).get(layout.UPDATES.encode(), ())
                if notices:
                    after = as_bytes(notices[-1].identifier)
                    await self._follow(notices)
            except FAILURES as error:
                log.warning("following the cluster failed (will reload): %s", error)
                await trio.sleep(RETRY_SECONDS)
                after = await self._load_all()

    async def _load_all(self) -> bytes:
        """Load everything; return the announcement to follow from. Retries until Redis
        answers."""
        while True:
            try:
                newest = await self.redis.xrevrange(layout.UPDATES, "+", "-", count=1)
                await self._follow_settings()
                touched: set[str] = set()
                for number in range(len(self._buckets)):
                    touched |= await self._reload(number)
                self._merge(touched)
                return as_bytes(newest[0].identifier) if newest else b"0-0"
            except FAILURES as error:
                log.warning("loading the cluster's views failed (will retry): %s", error)
                await trio.sleep(RETRY_SECONDS)

    async def _follow(self, notices: Sequence[StreamEntry]) -> None:
        reload: set[int] = set()
        fields: dict[int, set[str]] = {}
        settings_changed = False
        for notice in notices:
            values = notice.field_values
            partition = as_text(values[b"partition"])
            if partition == layout.SETTINGS_NOTICE:
                settings_changed = True
                continue
            number, sequence = int(partition), int(values[b"sequence"])
            if number >= len(self._sequences) or sequence <= self._sequences[number]:
                continue  # already loaded with a newer whole view
            if values[b"reset"] == b"1" or sequence != self._sequences[number] + 1:
                reload.add(number)
            else:
                fields.setdefault(number, set()).update(as_text(values[b"fields"]).split("\n"))
            self._sequences[number] = sequence
        if settings_changed:
            await self._follow_settings()
        touched: set[str] = set()
        for number in reload:
            touched |= await self._reload(number)
        for number, names in fields.items():
            if number not in reload:
                touched |= await self._fetch(number, sorted(names))
        self._merge(touched)

    async def _follow_settings(self) -> None:
        settings = await load_settings(self.redis)
        if settings != self.aggregator.settings:
            self.aggregator.update_settings(settings)

    async def _reload(self, number: int) -> set[str]:
        """Load a partition's whole view; return the bucket fields it had or has now."""
        stored = await self.redis.hgetall(layout.view(number))
        before = set(self._buckets[number])
        self._buckets[number] = {}
        sequence = stored.pop(layout.SEQUENCE_FIELD.encode(), b"0")
        self._sequences[number] = int(sequence)
        self._take(number, stored.items())
        return before | set(self._buckets[number])

    async def _fetch(self, number: int, names: list[str]) -> set[str]:
        values = await self.redis.hmget(layout.view(number), names)
        pairs = [(name.encode(), value) for name, value in zip(names, values, strict=True)]
        self._take(number, pairs)
        return {name for name in names if name != layout.COUNTS_FIELD}

    def _take(self, number: int, pairs: Iterable[tuple[bytes, bytes | None]]) -> None:
        buckets = self._buckets[number]
        for raw_name, value in pairs:
            name = raw_name.decode()
            if name == layout.COUNTS_FIELD:
                if value is not None:
                    applied, duplicates = msgspec.msgpack.decode(value)
                    self._counts[number] = (applied, duplicates)
            elif value is None:
                buckets.pop(name, None)
            else:
                try:
                    buckets[name] = snapshots.decode_value(value, Bucket)
                except snapshots.SnapshotError as error:
                    log.error("partition %d: bucket %s skipped: %s", number, name, error)

    def _merge(self, touched: set[str]) -> None:
        """Merge the touched bucket keys across partitions; install the result."""
        if not touched and self.ready:
            return
        for name in touched:
            found = [buckets[name] for buckets in self._buckets if name in buckets]
            if not found:
                self._merged.pop(name, None)
                continue
            interval, _ = layout.bucket_key(name)
            merged = Bucket(
                profile_cap=ALL_TIME_PROFILE_CAP if interval == ALL_TIME else BUCKET_PROFILE_CAP
            )
            for bucket in found:
                merged.merge(bucket)
            self._merged[name] = merged
        self._install()

    def _install(self) -> None:
        all_time = Bucket(profile_cap=ALL_TIME_PROFILE_CAP)
        buckets: dict[str, list[tuple[float, Bucket]]] = {name: [] for name in INTERVALS}
        for name, bucket in self._merged.items():
            interval, start = layout.bucket_key(name)
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
