"""Where a cluster keeps what in Redis, and which partition a user's interactions go to."""

from __future__ import annotations

import zlib

from engauge.store.journal import Position
from engauge.stream.aggregator import BucketKey
from engauge.stream.interaction import UserKey

PREFIX = "engauge"
PARTITIONS = f"{PREFIX}:partitions"
"""The partition count the cluster was created with: fixed, since it decides where users go."""
SECRETS = f"{PREFIX}:secrets"
"""A hash of the generated secrets every node shares (login, API and public keys, JWT key)."""
SETTINGS = f"{PREFIX}:settings"
"""The dashboard settings as JSON."""
SETTINGS_CHANGES = f"{PREFIX}:settings:changes"
"""A capped stream with an entry each time the settings change: dashboard nodes follow it."""
AGGREGATORS = f"{PREFIX}:aggregators"
"""A sorted set of live aggregate nodes, scored by when their heartbeat expires (ms)."""


def log(partition: int) -> str:
    """The stream of a partition's accepted interactions, one entry per ingest group commit."""
    return f"{PREFIX}:log:{partition}"


def lease(partition: int) -> str:
    """Who owns a partition: its aggregator's token, with an expiry the owner keeps renewing."""
    return f"{PREFIX}:lease:{partition}"


def snapshot(partition: int) -> str:
    """A hash with a partition's newest snapshot: ``data``, ``offset`` and ``entries``."""
    return f"{PREFIX}:snapshot:{partition}"


def previous_snapshot(partition: int) -> str:
    """The snapshot before the newest: kept, with the stream after it, in case the newest
    cannot be read."""
    return f"{PREFIX}:snapshot:{partition}:previous"


def view(partition: int) -> str:
    """A hash of a partition's buckets by :func:`bucket_field` as of its last checkpoint,
    with :data:`COUNTS_FIELD` and :data:`SEQUENCE_FIELD`, the number of the last change it
    includes."""
    return f"{PREFIX}:view:{partition}"


def changes(partition: int) -> str:
    """The stream of a partition's published changes since its view's checkpoint: each
    entry's ``sequence`` is one more than the one before; ``delta`` holds what changed
    (see :class:`engauge.cluster.owner.Changes`)."""
    return f"{PREFIX}:changes:{partition}"


def sequence(partition: int) -> str:
    """The number of the partition's last published change (it outlives owners)."""
    return f"{PREFIX}:sequence:{partition}"


SEQUENCE_FIELD = "~sequence"
"""Written by the publishing script in :mod:`engauge.cluster.owner`, under this name."""
COUNTS_FIELD = "~counts"
"""Interactions counted and de-duplicated in the partition, as msgpack ``[n, n]``."""


def bucket_field(key: BucketKey) -> str:
    interval, start = key
    return f"{interval}/{start!r}"


def bucket_key(field: str) -> BucketKey:
    interval, _, start = field.partition("/")
    return interval, float(start)


def partition_of(user: UserKey, partitions: int) -> int:
    """A stable hash of the user (``hash()`` differs per process), so a user's interactions
    always reach the same partition and their sessions stay whole."""
    user_type, user_id = user
    return zlib.crc32(f"{user_type}\0{user_id}".encode(errors="surrogatepass")) % partitions


def position_of(entry_id: str) -> Position:
    """A stream entry id (``milliseconds-sequence``) as the position a snapshot records."""
    milliseconds, _, sequence = entry_id.partition("-")
    return Position(int(milliseconds), int(sequence))


def entry_id(position: Position) -> str:
    return f"{position.segment}-{position.offset}"
