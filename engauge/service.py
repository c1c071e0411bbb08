"""Wiring: one trio nursery owns the pipeline (journal writer, aggregator) and the server.

Start-up restores the newest snapshot and replays the journal after it before the server
accepts requests; SIGTERM or SIGINT stops accepting, drains open requests, applies what is
queued, writes a final snapshot, syncs the journal and returns.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import signal
import time
from pathlib import Path
from typing import Any

import hypercorn
import hypercorn.trio
import trio

from engauge.config import Config
from engauge.http.app import create_app
from engauge.http.auth import Accounts
from engauge.http.dashboard import DashboardApi
from engauge.http.ingest import IngestApp
from engauge.logs import ACCESS_FORMAT
from engauge.metrics import Reading, read_state
from engauge.pipeline import Pipeline
from engauge.snapshotter import Snapshotter
from engauge.store import snapshot as snapshots
from engauge.store.erasures import Erasures
from engauge.store.journal import Journal, read_interactions, segment_files
from engauge.store.layout import ARCHIVE, JOURNAL, SNAPSHOTS
from engauge.store.lock import lock_base_path
from engauge.store.secrets import SECRETS_FILE, Secrets, load_secrets
from engauge.store.settings_file import load_settings, save_settings
from engauge.stream.aggregator import Aggregator
from engauge.stream.calendar import Calendar
from engauge.stream.settings import Settings

log = logging.getLogger("engauge")

WEEKDAYS = {"monday": 0, "sunday": 6}
GRACEFUL_SECONDS = 10.0


GC_THRESHOLDS = (50_000, 20, 20)


def tune_garbage_collector() -> None:
    """Collect less often: the state is millions of long-lived objects, and Python's default
    (a young-generation pass every 700 new containers) spends ~15 % of the aggregator's time
    re-scanning them. Measured with ``python -m benchmarks aggregator``."""
    gc.set_threshold(*GC_THRESHOLDS)


HEADER_BYTES = 16 * 1024
"""Request line and headers: what a connection may hold before its headers are complete
(HTTP/1.1; the same cap for an HTTP/2 header list). Beyond it the answer is ``431`` and the
connection closes. Browsers send a few KiB; Engauge's largest header, a token cookie, is
under 1 KiB."""

KEEP_ALIVE_SECONDS = 5.0
"""An idle connection, and one whose request headers are not complete, is closed after
this long: hypercorn's idle timer starts when a connection opens or a response ends and
stops only when a whole request head has arrived, so headers sent a byte at a time
(slowloris) are cut off here too, however steadily they trickle."""

BACKLOG = 4096
"""Connections the kernel queues before Engauge accepts them (capped by
``net.core.somaxconn``). With hypercorn's 100, a burst of new connections overflowed the
queue and every overflowing client waited out a one-second SYN retry."""

APP_QUEUE = 10
"""Body chunks (up to 64 KiB each) queued for a request before hypercorn stops reading its
socket: what a body the application has not asked for yet can cost."""


def hypercorn_config(config: Config) -> hypercorn.Config:
    """The server's limits on hostile clients (the README's Security section lists them).

    ``read_timeout`` stays unset on purpose: hypercorn counts it as silence from the
    client, and the client of a live stream or an export download is silent by design,
    so it would end them. A body's time limit is the application's
    (:data:`engauge.http.ingest.BODY_SECONDS`), counted only while a body is being read.
    """
    server = hypercorn.Config()
    server.bind = [f"{config.host}:{config.port}"]
    server.h11_max_incomplete_size = HEADER_BYTES
    server.h2_max_header_list_size = HEADER_BYTES
    server.keep_alive_timeout = KEEP_ALIVE_SECONDS
    server.backlog = BACKLOG
    server.max_app_queue_size = APP_QUEUE
    server.read_timeout = None
    # Loggers, not streams: every line goes through the one format set up by the CLI.
    server.accesslog = logging.getLogger("engauge.access")
    server.access_log_format = ACCESS_FORMAT
    server.errorlog = logging.getLogger("hypercorn.error")
    server.graceful_timeout = GRACEFUL_SECONDS
    if config.https:
        server.certfile = str(config.certfile)
        server.keyfile = str(config.keyfile)
    return server


async def start_server(
    nursery: trio.Nursery, app: Any, config: Config, shutdown: trio.Event
) -> list[str]:
    """Start hypercorn in ``nursery`` with Engauge's limits; the URLs it listens on. It
    drains and stops when ``shutdown`` is set."""
    binds: list[str] = await nursery.start(
        functools.partial(
            hypercorn.trio.serve,
            app,
            hypercorn_config(config),
            shutdown_trigger=shutdown.wait,
            mode="asgi",
        )
    )
    return binds


def announce_secrets(user: str, secrets: Secrets, stored: object) -> None:
    """Print generated credentials once, on the start that created them, with where they
    are ``stored``."""
    if "password" in secrets.generated:
        print(f"Dashboard login: {user} / {secrets.password}  (stored in {stored})")
    if "apikey" in secrets.generated:
        print(f"API key: {secrets.apikey}  (stored in {stored})")
    if "publickey" in secrets.generated:
        print(f"Public key for web pages: {secrets.publickey}  (stored in {stored})")


async def serve(
    config: Config, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run Engauge until SIGTERM or SIGINT; report the bound URLs through ``task_status``."""
    lock_base_path(config.basepath)
    tune_garbage_collector()
    secrets = load_secrets(
        config.basepath,
        {
            "password": config.password,
            "apikey": config.apikey,
            "publickey": config.publickey,
            "jwt": config.jwt,
        },
    )
    announce_secrets(config.user, secrets, config.basepath / SECRETS_FILE)
    calendar = Calendar(config.timezone, WEEKDAYS[config.weekstart])
    aggregator = Aggregator(calendar, config.sessiondelay * 60, load_settings(config.basepath))
    erasures = Erasures(config.basepath, secrets.jwt)
    raw = [config.basepath / ARCHIVE, config.basepath / JOURNAL]

    def erase(user: tuple[str, str]) -> int:
        erasures.add(user)
        return erasures.scrub(segment_files(config.basepath / ARCHIVE))

    async def keep_settings(settings: Settings) -> None:
        await trio.to_thread.run_sync(save_settings, config.basepath, settings)

    dashboard = DashboardApi(
        aggregator,
        keep_settings,
        read_raw=lambda: erasures.without(read_interactions(raw)),
        erase=erase,
    )
    running: list[Pipeline] = []
    app = create_app(
        None,  # until recovery has finished: see Application
        Accounts(config.user, secrets.password, secrets.jwt),
        dashboard,
        config.https,
        metrics_token=config.metricstoken,
        unready=lambda: running[0].unwritable if running else "recovering the journal",
    )
    shutdown = trio.Event()
    journal: Journal | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_signal, shutdown)
            async with trio.open_nursery() as server:
                binds = await start_server(server, app, config, shutdown)
                # The port answers /health and /health/ready (503) while the state is
                # rebuilt in a worker thread; nothing else touches it until then.
                journal = await trio.to_thread.run_sync(recover, config, aggregator)
                await trio.to_thread.run_sync(
                    erasures.scrub, segment_files(config.basepath / ARCHIVE)
                )
                gc.freeze()  # what recovery built lives on: keep it out of later collections
                pipeline = Pipeline(journal, aggregator, config.fsync)
                snapshotter = Snapshotter(
                    pipeline,
                    directory=config.basepath / SNAPSHOTS,
                    archive=config.basepath / ARCHIVE,
                    timezone=str(config.timezone),
                    week_start=WEEKDAYS[config.weekstart],
                    every=config.snapshotevery,
                    erasures=erasures,
                )
                read_state(state_readings(config.basepath, pipeline, dashboard))
                await nursery.start(pipeline.run)
                nursery.start_soon(snapshotter.run)
                nursery.start_soon(dashboard.live.run, shutdown)
                running.append(pipeline)
                app.ingest = IngestApp(
                    pipeline, secrets.apikey, secrets.publickey, config.cors, config.timezone
                )
                app.started = True
                for url in binds:
                    print(f"Engauge listening on {url}", flush=True)
                task_status.started(binds)
            nursery.cancel_scope.cancel()
        pipeline.drain()
        snapshotter.take_now()
    finally:
        if journal is not None:
            journal.close()
        log.info("stopped; journal synced")


def state_readings(basepath: Path, pipeline: Pipeline, dashboard: DashboardApi) -> list[Reading]:
    """What ``/metrics`` reads from the running service at each scrape."""
    aggregator = pipeline.aggregator

    def journal_bytes() -> float:
        total = 0
        for path in (basepath / JOURNAL).glob("*.log"):
            with contextlib.suppress(FileNotFoundError):  # retired meanwhile
                total += path.stat().st_size
        return total

    return [
        Reading("engauge_open_sessions", "Sessions open now.", lambda: len(aggregator.sessions)),
        Reading(
            "engauge_aggregator_queue_depth",
            "Interactions acknowledged and not yet counted.",
            lambda: pipeline.pending,
        ),
        Reading(
            "engauge_aggregator_lag_seconds",
            "How long the oldest of those has waited to be counted.",
            lambda: pipeline.lag(time.time()),
        ),
        Reading(
            "engauge_interactions_counted",
            "Interactions counted in the statistics (duplicates excluded), since the data began.",
            lambda: aggregator.applied,
            counter=True,
        ),
        Reading(
            "engauge_interactions_deduplicated",
            "Interactions acknowledged again for an id seen within 24 h, since the data began.",
            lambda: aggregator.duplicates,
            counter=True,
        ),
        Reading("engauge_journal_bytes", "Size of the journal's segments.", journal_bytes),
        Reading(
            "engauge_sse_subscribers",
            "Open live streams (GET /dashboard/stream).",
            lambda: dashboard.live.subscribers,
        ),
    ]


def recover(config: Config, aggregator: Aggregator) -> Journal:
    """Newest readable snapshot, then the journal after it; returns the journal to append to."""
    started = time.monotonic()
    snapshot = snapshots.load_newest(config.basepath / SNAPSHOTS)
    position = None
    if snapshot is not None:
        snapshots.warn_if_cut_differently(
            snapshot, str(config.timezone), WEEKDAYS[config.weekstart]
        )
        aggregator.restore(snapshot.state)
        position = snapshot.position
    restored = aggregator.applied
    journal = Journal.recover(config.basepath / JOURNAL, aggregator.apply, after=position)
    aggregator.expire(time.time())
    log.info(
        "recovered %d interactions from %s and %d from the journal in %.2f s",
        restored,
        "a snapshot" if snapshot else "no snapshot",
        aggregator.applied - restored,
        time.monotonic() - started,
    )
    return journal


async def stop_on_signal(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s: draining requests", signal.Signals(signum).name)
            shutdown.set()
            return
