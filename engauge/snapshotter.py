"""Periodic snapshots without pausing ingestion: the state is written by a forked child.

``fork`` gives the child a copy-on-write image of the state as it is between two batches,
so the parent only pays for copying its page tables, whatever the state's size (the same
idea as Redis' ``BGSAVE``). The child encodes and writes the file, then exits without
running any cleanup; the parent waits for it in a worker thread, then keeps the two newest
snapshots and deletes the journal segments both of them cover.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import trio

from engauge.metrics import SNAPSHOT_BYTES, SNAPSHOT_SECONDS, SNAPSHOT_TIME
from engauge.pipeline import Pipeline
from engauge.store import snapshot as snapshots
from engauge.store.erasures import Erasures
from engauge.store.journal import drop_archived_before
from engauge.store.snapshot import Snapshot
from engauge.stream.settings import RAW

DAY = 86_400.0
log = logging.getLogger("engauge.snapshot")


class Snapshotter:
    """Writes snapshots of ``pipeline``'s aggregator into ``directory`` every ``every`` s;
    retired journal segments go to ``archive``."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        directory: Path,
        archive: Path,
        timezone: str,
        week_start: int,
        every: float,
        erasures: Erasures,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.erasures = erasures
        self.clock = clock
        self.directory = directory
        self.archive = archive
        self.pipeline = pipeline
        self.timezone = timezone
        self.week_start = week_start
        self.every = every
        self._taken: tuple[object, int] | None = None

    async def run(self) -> None:
        """Snapshot whenever something changed; a failed one is logged and tried again."""
        while True:
            await trio.sleep(self.every)
            self.drop_old_interactions()
            if self._taken == self._moment():
                continue
            try:
                await self.take_in_background()
            except OSError as error:  # fork refused (memory), a full disk, …
                self._taken = None
                log.error("snapshot failed (will retry): %s", error)

    def _moment(self) -> tuple[object, int]:
        """What a snapshot would capture: unchanged means there is nothing new to write."""
        return (self.pipeline.applied_position, self.pipeline.aggregator.version)

    async def take_in_background(self) -> float:
        """Fork; the child writes the snapshot while the parent goes on ingesting.

        Returns how long the parent was paused (capturing the state and forking), in s.
        """
        started = time.monotonic()
        snapshot = self._capture()
        pid = fork_child(lambda: snapshots.write(self.directory, snapshot))
        paused = time.monotonic() - started
        status = await _wait_for(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            self._taken = None
            log.error("snapshot at %s failed in its writer process", snapshot.position)
            return paused
        self._forget_covered()
        took = time.monotonic() - started
        self._written(snapshot, took)
        log.info(
            "snapshot at %s written in %.2f s (ingest paused %.1f ms)",
            snapshot.position,
            took,
            paused * 1000,
        )
        return paused

    def drop_old_interactions(self) -> int:
        """Enforce the raw-interaction retention of settings on the archive (read each time,
        so a change applies at once)."""
        days = self.pipeline.aggregator.settings.retention[RAW]
        dropped = drop_archived_before(self.archive, self.clock() - days * DAY)
        if dropped:
            log.info("dropped %d archived journal segments older than %d days", dropped, days)
        return dropped

    def _written(self, snapshot: Snapshot, took: float) -> None:
        SNAPSHOT_TIME.set(time.time())
        SNAPSHOT_SECONDS.set(took)
        path = snapshots.snapshot_path(self.directory, snapshot.position)
        SNAPSHOT_BYTES.set(path.stat().st_size if path.exists() else 0)

    def take_now(self) -> None:
        """Write a snapshot in this process: at shutdown, when nothing else runs."""
        started = time.monotonic()
        snapshot = self._capture()
        snapshots.write(self.directory, snapshot)
        self._forget_covered()
        self._written(snapshot, time.monotonic() - started)
        log.info("final snapshot at %s written", snapshot.position)

    def _capture(self) -> Snapshot:
        # Later records go to a new segment, so this one can go once two snapshots cover it.
        self.pipeline.journal.roll()
        self._taken = self._moment()
        return Snapshot(
            position=self.pipeline.applied_position,
            timezone=self.timezone,
            week_start=self.week_start,
            state=self.pipeline.aggregator.state(),
        )

    def _forget_covered(self) -> None:
        """Retire the journal segments both kept snapshots cover: into the archive while
        raw interactions are kept for export (settings ``interactions``), else deleted,
        together with any archive left from when they were kept."""
        oldest = snapshots.prune(self.directory)
        keep_raw = self.pipeline.aggregator.settings.interactions
        if oldest is not None:
            archived = self.pipeline.journal.retire_before(
                oldest.segment, self.archive if keep_raw else None
            )
            self.erasures.scrub(archived, wait=False)
        if not keep_raw and self.archive.exists():
            shutil.rmtree(self.archive)


def fork_child(work: Callable[[], object], keep: int | None = None) -> int:
    """Fork a child that runs ``work`` and exits; return its pid.

    The child drops every inherited descriptor but stdio and ``keep`` (the base path's lock,
    the listening sockets, Redis connections: they must go when the parent goes), and leaves
    without running any cleanup of the parent's.
    """
    pid = os.fork()
    if pid != 0:
        return pid
    code = 1
    try:
        if keep is None:
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        else:
            os.closerange(3, keep)
            os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        work()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


async def encode_in_child(snapshot: Snapshot) -> bytes:
    """``snapshot`` encoded by a forked child and read back through a pipe: the parent only
    pays for the fork, however large the state (a cluster stores the bytes in Redis)."""
    read_end, write_end = os.pipe()
    pid = fork_child(lambda: _write_all(write_end, snapshots.encode(snapshot)), keep=write_end)
    os.close(write_end)
    chunks = []
    try:
        async with trio.lowlevel.FdStream(read_end) as pipe:
            while chunk := await pipe.receive_some(PIPE_CHUNK):
                chunks.append(chunk)
    except BaseException:  # cancelled (shutdown) or the pipe broke: no orphan writer
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # noqa: ASYNC222 (killed: it is gone at once)
        raise
    if os.waitstatus_to_exitcode(await _wait_for(pid)) != 0:
        raise OSError("the snapshot writer process failed; see its traceback above")
    return b"".join(chunks)


PIPE_CHUNK = 1 << 20


def _write_all(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as pipe:
        pipe.write(data)


async def _wait_for(pid: int) -> int:
    """The child's exit status; if we are cancelled (shutdown), the child is killed."""
    try:
        _, status = await trio.to_thread.run_sync(os.waitpid, pid, 0, abandon_on_cancel=True)
    except trio.Cancelled:
        os.kill(pid, signal.SIGKILL)  # the abandoned thread's waitpid then reaps it
        raise
    return status
