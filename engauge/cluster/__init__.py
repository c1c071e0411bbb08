"""Engauge as several processes sharing one Redis (``ENGAUGE_REDIS``): the scale-out mode.

Ingest nodes validate interactions as the single process does and append them, split by
user, to ``ENGAUGE_PARTITIONS`` Redis streams (:mod:`engauge.cluster.log`); Redis' AOF is
then the journal. Aggregate nodes share the partitions out through leases with expiry;
each owned partition has an ordinary :class:`~engauge.stream.aggregator.Aggregator`, fed
from its stream, snapshotted into Redis with its stream offset, and published bucket by
bucket (:mod:`engauge.cluster.owner`). Dashboard nodes merge what every partition published
(:mod:`engauge.cluster.view`) and answer the dashboard API from the merged buckets.
"""
