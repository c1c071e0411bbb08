"""What a cluster's reads rest on, checked in-process against one aggregator.

A cluster splits users into partitions, aggregates each apart, publishes each partition's
changed buckets, and a dashboard node merges the buckets of all partitions. So: merged
partitions must equal one aggregator fed everything, and a replica kept only from the
published changes must equal the aggregator it follows.
"""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from test_stream_model import (
    MODEL,
    Stream,
    ample_settings,
    assert_close,
    full_view,
    split,
    streams,
)

from engauge.cluster import layout
from engauge.store.journal import Position
from engauge.stream.aggregator import (
    ALL_TIME_KEY,
    Aggregator,
    BucketKey,
    cap_of,
)
from engauge.stream.bucket import Bucket
from engauge.stream.calendar import ALL_TIME, INTERVALS, Calendar
from engauge.stream.interaction import Interaction


def per_user_ids(stream: Stream) -> list[Interaction]:
    """Event ids made unique per user: a client resends an event as the same user, so its
    copies reach the same partition (the one de-duplication a cluster keeps)."""
    return [
        msgspec.structs.replace(item, id=f"{item.user}/{item.id}") if item.id else item
        for item in stream.interactions
    ]


def aggregate(stream: Stream, items: list[Interaction]) -> Aggregator:
    aggregator = Aggregator(
        Calendar(stream.zone, stream.week_start), stream.delay, ample_settings(stream)
    )
    aggregator.apply(items)
    if items:
        aggregator.expire(items[-1].received_at)
    aggregator.expire(stream.now)
    return aggregator


def buckets_of(aggregator: Aggregator) -> dict[BucketKey, Bucket]:
    found = {ALL_TIME_KEY: aggregator.all_time}
    for interval in INTERVALS:
        for start, bucket in aggregator.buckets[interval].items():
            found[(interval, start)] = bucket
    return found


def merged(parts: list[Aggregator]) -> dict[BucketKey, Bucket]:
    """What a dashboard node shows: per bucket key, the merge of every partition's bucket."""
    result: dict[BucketKey, Bucket] = {}
    for part in parts:
        for key, bucket in buckets_of(part).items():
            result.setdefault(key, Bucket(profile_cap=cap_of(key))).merge(bucket)
    return result


class Steps:
    """A flush observer keeping copies of what it is told, as a cluster node encodes it."""

    def __init__(self) -> None:
        self.steps: list[tuple[Bucket | None, list[BucketKey]]] = []

    def merged(self, partial: Bucket, keys: list[BucketKey]) -> None:
        copy = Bucket(profile_cap=partial.profile_cap)
        copy.merge(partial)
        self.steps.append((copy, keys))

    def dropped(self, key: BucketKey) -> None:
        self.steps.append((None, [key]))

    def taken(self) -> list[tuple[Bucket | None, list[BucketKey]]]:
        taken, self.steps = self.steps, []
        return taken


def views(buckets: dict[BucketKey, Bucket]) -> dict[str, object]:
    return {layout.bucket_field(key): full_view(bucket) for key, bucket in buckets.items()}


@MODEL
@given(streams(), st.integers(2, 5))
def test_merged_partitions_equal_one_aggregator(stream: Stream, partitions: int) -> None:
    items = per_user_ids(stream)
    whole = aggregate(stream, items)
    parts = [
        aggregate(
            stream,
            [item for item in items if layout.partition_of(item.user, partitions) == number],
        )
        for number in range(partitions)
    ]
    shown = merged(parts)
    expected = buckets_of(whole)
    # A partition that saw nothing of a bucket has no such bucket; an empty one is no figure.
    assert set(shown) >= {
        key for key, bucket in expected.items() if bucket.total or key[0] == ALL_TIME
    }
    assert_close(
        views({key: shown.get(key, Bucket()) for key in expected}), views(expected), "merged"
    )
    assert sum(part.applied for part in parts) == whole.applied
    assert sum(part.duplicates for part in parts) == whole.duplicates


@MODEL
@given(streams(), st.data())
def test_a_replica_of_the_published_changes_equals_the_aggregator(
    stream: Stream, data: st.DataObject
) -> None:
    """Publishing what flushes merged into each bucket (and what retention dropped), a
    copy that merges those deltas equals the aggregator's buckets."""
    items = stream.interactions
    cuts = data.draw(st.lists(st.integers(0, len(items)), max_size=6), label="cuts")
    aggregator = Aggregator(
        Calendar(stream.zone, stream.week_start), stream.delay, ample_settings(stream)
    )
    replica: dict[BucketKey, Bucket] = {}
    for key, bucket in aggregator.every_bucket().items():  # a new owner: the whole view…
        replica[key] = Bucket(profile_cap=cap_of(key))
        replica[key].merge(bucket)
    steps = Steps()
    aggregator.observer = steps  # … then what each flush does

    def publish() -> None:
        aggregator.flush()
        for partial, keys in steps.taken():
            for key in keys:
                if partial is None:
                    replica.pop(key, None)
                else:
                    replica.setdefault(key, Bucket(profile_cap=cap_of(key))).merge(partial)
        assert_close(views(replica), views(buckets_of(aggregator)), "replica")

    for batch in split(items, cuts):
        aggregator.apply(batch)
        if batch:
            aggregator.expire(batch[-1].received_at)
        publish()
    aggregator.expire(stream.now + 400 * 86_400)  # retention drops the oldest buckets
    publish()


def test_partition_of_is_stable_and_in_range() -> None:
    """Every process must send a user to the same partition (``hash()`` would not)."""
    assert layout.partition_of(("", "user-1"), 8) == layout.partition_of(("", "user-1"), 8)
    assert layout.partition_of(("visitor", "42"), 8) == 0  # crc32, fixed forever
    found = {layout.partition_of(("", f"user-{n}"), 8) for n in range(200)}
    assert found == set(range(8))


def test_a_stream_entry_id_is_a_snapshot_position_and_back() -> None:
    assert layout.position_of("1796425032668-3") == Position(1796425032668, 3)
    assert layout.entry_id(Position(1796425032668, 3)) == "1796425032668-3"
    assert layout.bucket_key(layout.bucket_field(("hourly", 1764806400.0))) == (
        "hourly",
        1764806400.0,
    )
