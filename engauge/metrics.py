"""Prometheus metrics (``GET /metrics``): what Engauge counts as it runs, and the state it
reads at each scrape.

Events are counted where they happen (the ingest routes, the journal, the snapshotter);
quantities that already exist in the state (open sessions, the queue, subscribers) are read
when Prometheus scrapes, so the hot path does no extra bookkeeping for them. The README's
"Operating Engauge" section documents every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from attrs import define
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()

ACCEPTED = Counter(
    "engauge_interactions_accepted",
    "Interactions journaled and acknowledged, by route.",
    ["route"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "engauge_interactions_rejected",
    "Refused input, by reason: invalid (one item of a request, counted per item), or a whole "
    "request refused: bad_request, unauthorized, forbidden, too_large, unsupported_type, "
    "rate_limited, unavailable.",
    ["reason"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "engauge_request_duration_seconds",
    "Time to answer an HTTP request, by route (a live stream: how long it stayed open).",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
FSYNC_SECONDS = Histogram(
    "engauge_journal_fsync_duration_seconds",
    "Time one fsync of the journal took.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
    registry=REGISTRY,
)
SNAPSHOT_TIME = Gauge(
    "engauge_snapshot_last_timestamp_seconds",
    "When the last snapshot was written (Unix time).",
    registry=REGISTRY,
)
SNAPSHOT_SECONDS = Gauge(
    "engauge_snapshot_last_duration_seconds",
    "How long writing the last snapshot took.",
    registry=REGISTRY,
)
SNAPSHOT_BYTES = Gauge(
    "engauge_snapshot_last_size_bytes", "Size of the last snapshot.", registry=REGISTRY
)

STATUS_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    413: "too_large",
    415: "unsupported_type",
    429: "rate_limited",
    503: "unavailable",
}


@define(frozen=True)
class Reading:
    """A quantity read from the running service at each scrape."""

    name: str
    help: str
    read: Callable[[], float]
    counter: bool = False


class Readings(Collector):
    """Turns :class:`Reading` values into metrics when Prometheus scrapes."""

    def __init__(self, readings: list[Reading]) -> None:
        self.readings = readings

    def collect(self) -> Iterator[Metric]:
        for reading in self.readings:
            family = CounterMetricFamily if reading.counter else GaugeMetricFamily
            yield family(reading.name, reading.help, value=reading.read())


_current: list[Readings] = []


def read_state(readings: list[Reading]) -> None:
    """Report ``readings`` from now on (replacing those of an earlier run in this process)."""
    for collector in _current:
        REGISTRY.unregister(collector)
    _current[:] = [Readings(readings)]
    REGISTRY.register(_current[0])
