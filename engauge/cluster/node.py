"""One node of a cluster: what runs for its ``--role``, under one trio nursery.

Every node serves ``/health``, ``/health/ready`` and ``/metrics``. An ingest node takes
interactions into the partition streams; an aggregate node owns partitions; a dashboard
node serves the login, the page and the dashboard API from the merged view; ``all`` is
the three in one process. Nodes keep nothing on local disk: Redis holds the streams, the
snapshots, the settings and the shared secrets.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import trio
from attrs import define

from engauge.cluster import layout
from engauge.cluster.log import PartitionedLog
from engauge.cluster.owner import AggregateNode, CalendarSetup
from engauge.cluster.shared import (
    FAILURES,
    Redis,
    agree_on_partitions,
    connect,
    save_settings,
    shared_secrets,
)
from engauge.cluster.view import ClusterView
from engauge.config import Config
from engauge.http.app import Serves, create_app
from engauge.http.auth import Accounts
from engauge.http.dashboard import DashboardApi
from engauge.http.ingest import IngestApp
from engauge.metrics import Reading, read_state
from engauge.service import WEEKDAYS, announce_secrets, start_server, stop_on_signal
from engauge.store.secrets import Secrets
from engauge.stream.aggregator import Aggregator
from engauge.stream.calendar import Calendar
from engauge.stream.settings import Settings

log = logging.getLogger("engauge.cluster")

ROLES = ("all", "ingest", "aggregate", "dashboard")


class ClusterUnreachable(OSError):
    """Redis did not answer at start-up; the message names ``ENGAUGE_REDIS``."""


@define
class Parts:
    """What this node runs, once started (``None`` where its role does not include it)."""

    role: str
    log: PartitionedLog | None = None
    aggregate: AggregateNode | None = None
    view: ClusterView | None = None
    started: bool = False

    def unready(self) -> str | None:
        if not self.started:
            return "joining the cluster"
        if self.log is not None and self.log.unwritable:
            return self.log.unwritable
        return None

    async def health(self) -> dict[str, Any]:
        report: dict[str, Any] = {"status": "alive", "role": self.role}
        if self.log is not None:
            report["ingest"] = {"pending": self.log.pending, "unwritable": self.log.unwritable}
        if self.aggregate is not None:
            report["node"] = self.aggregate.node
            report["partitions"] = await self.aggregate.lag()
        if self.view is not None:
            report["dashboard"] = {"loaded": self.view.ready}
        return report


def serves(role: str) -> Serves:
    return Serves(
        role=role,
        ingest=role in ("ingest", "all"),
        dashboard=role in ("dashboard", "all"),
    )


async def serve_node(
    config: Config,
    url: str,
    role: str,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run this node of the cluster at ``url`` (``ENGAUGE_REDIS``) until SIGTERM or SIGINT;
    report the bound URLs through ``task_status``."""
    redis, reader = connect(url), connect(url)
    async with redis, reader:
        secrets = await _join(redis, config)
        announce_secrets(config.user, secrets, f"Redis, key {layout.SECRETS}")
        calendar = Calendar(config.timezone, WEEKDAYS[config.weekstart])
        shown = Aggregator(calendar, config.sessiondelay * 60, Settings())
        parts = Parts(role)
        dashboard = DashboardApi(
            shown, functools.partial(save_settings, redis), read_raw=None, erase=None
        )
        app = create_app(
            None,
            Accounts(config.user, secrets.password, secrets.jwt),
            dashboard,
            config.https,
            metrics_token=config.metricstoken,
            unready=parts.unready,
            health=parts.health,
            serves=serves(role),
        )
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_signal, shutdown)
            async with trio.open_nursery() as server:
                binds = await start_server(server, app, config, shutdown)
                if role in ("aggregate", "all"):
                    setup = CalendarSetup(
                        calendar,
                        config.sessiondelay * 60,
                        str(config.timezone),
                        WEEKDAYS[config.weekstart],
                    )
                    parts.aggregate = AggregateNode(
                        url,
                        redis,
                        reader,
                        config.partitions,
                        setup=setup,
                        snapshot_every=config.snapshotevery,
                    )
                    await nursery.start(parts.aggregate.run)
                if role in ("dashboard", "all"):
                    parts.view = ClusterView(redis, config.partitions, shown)
                    await nursery.start(parts.view.run)
                    nursery.start_soon(dashboard.live.run, shutdown)
                if role in ("ingest", "all"):
                    parts.log = PartitionedLog(redis, config.partitions)
                    await nursery.start(parts.log.run)
                    app.ingest = IngestApp(
                        parts.log, secrets.apikey, secrets.publickey, config.cors, config.timezone
                    )
                read_state(_readings(parts))
                parts.started = app.started = True
                print(f"Engauge cluster node, role {role}", flush=True)
                for bound in binds:
                    print(f"Engauge listening on {bound}", flush=True)
                task_status.started(binds)
            nursery.cancel_scope.cancel()
    log.info("stopped")


JOIN_SECONDS = 10.0
"""How long a starting node waits for Redis (started at the same time, say) to answer."""


async def _join(redis: Redis, config: Config) -> Secrets:
    """Check the partition count and fetch the shared secrets, retrying for
    :data:`JOIN_SECONDS`; then a clear error if Redis cannot be reached."""
    deadline = trio.current_time() + JOIN_SECONDS
    while True:
        try:
            await agree_on_partitions(redis, config.partitions)
            return await shared_secrets(
                redis,
                {
                    "password": config.password,
                    "apikey": config.apikey,
                    "publickey": config.publickey,
                    "jwt": config.jwt,
                },
            )
        except FAILURES as error:
            if trio.current_time() >= deadline:
                raise ClusterUnreachable(
                    f"ENGAUGE_REDIS={config.redis}: {error}; start Redis or correct the URL"
                ) from error
            log.warning("Redis does not answer yet (will retry): %s", error)
            await trio.sleep(1)


def _readings(parts: Parts) -> list[Reading]:
    """What ``/metrics`` reads from this node at each scrape."""
    readings = []
    if parts.log is not None:
        log_ = parts.log
        readings.append(
            Reading(
                "engauge_cluster_pending",
                "Interactions accepted and not yet acknowledged by Redis.",
                lambda: log_.pending,
            )
        )
    if parts.aggregate is not None:
        node = parts.aggregate
        readings += [
            Reading(
                "engauge_cluster_partitions_owned",
                "Partitions this node aggregates now.",
                lambda: len(node.owned),
            ),
            _summed(node, "engauge_open_sessions", "Sessions open now.", _open_sessions),
            _summed(
                node,
                "engauge_interactions_counted",
                "Interactions counted in the owned partitions (duplicates excluded).",
                _applied,
            ),
        ]
    return readings


def _summed(
    node: AggregateNode, name: str, help_text: str, of: Callable[[Aggregator], int]
) -> Reading:
    def total() -> int:
        return sum(of(part.aggregator) for part in node.owned.values())

    return Reading(name, help_text, total)


def _open_sessions(aggregator: Aggregator) -> int:
    return len(aggregator.sessions)


def _applied(aggregator: Aggregator) -> int:
    return aggregator.applied
