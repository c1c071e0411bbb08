"""The path of accepted interactions: journal group commit, then the aggregator.

Requests hand their validated batch to :meth:`Pipeline.submit` and wait. One writer task
takes every batch waiting, writes them with one ``write`` (one checksummed record per
batch, ``fsync``ed before anyone is answered when ``ENGAUGE_FSYNC=always``), passes them on
to the aggregator task in the same order, then wakes the requests: so a ``202`` is only
ever sent for journaled interactions, and the aggregator sees them in journal order,
exactly as a replay will.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from typing import TypeVar

import attrs
import trio

from engauge.metrics import FSYNC_SECONDS
from engauge.store.journal import Journal, Position
from engauge.stream.aggregator import Aggregator
from engauge.stream.interaction import Interaction

log = logging.getLogger("engauge.pipeline")

MAX_PENDING = 50_000
"""Interactions accepted but not yet counted before new requests get ``503``: about a
second of the aggregator's work, so what is acknowledged is visible within a second."""
EXPIRY_SECONDS = 1.0


T = TypeVar("T")


async def everything_waiting(inbox: trio.MemoryReceiveChannel[T]) -> list[T]:
    """Wait for one item, then take every other one already waiting: a group commit."""
    group = [await inbox.receive()]
    while True:
        try:
            group.append(inbox.receive_nowait())
        except trio.WouldBlock:
            return group


class Overloaded(Exception):
    """The aggregator is behind by more than :data:`MAX_PENDING`; retry shortly."""


class NotDurable(Exception):
    """The journal could not be written or synced; nothing of the batch was acknowledged."""


@attrs.define(eq=False)
class _Waiter:
    serial: int
    batch: Sequence[Interaction]
    done: trio.Event = attrs.field(factory=trio.Event)
    error: str | None = None


@attrs.define(frozen=True)
class _Group:
    """Journaled batches on their way to the aggregator."""

    batches: list[Sequence[Interaction]]
    serials: list[int]
    position: Position


class Pipeline:
    """Owns the journal writer and the aggregator task; ``fsync`` is the ENGAUGE_FSYNC mode."""

    def __init__(self, journal: Journal, aggregator: Aggregator, fsync: str) -> None:
        self.journal = journal
        self.aggregator = aggregator
        self.fsync = fsync
        self.pending = 0
        self.applied_position = journal.position
        """The journal position up to which the aggregator has applied every record."""
        self._serials = itertools.count()
        self._arrivals: dict[int, float] = {}
        """Receipt time of each batch not yet applied, oldest first (submission order)."""
        self._to_writer, self._writer_inbox = trio.open_memory_channel[_Waiter](math.inf)
        self._to_aggregator, self._aggregator_inbox = trio.open_memory_channel[_Group](math.inf)
        self._dirty = False
        self.unwritable: str | None = None
        """Why the journal cannot be written now (the last write or fsync failed), or None."""

    def check_capacity(self) -> None:
        """Raise :class:`Overloaded` when the aggregator is too far behind to take more."""
        if self.pending >= MAX_PENDING:
            raise Overloaded

    async def submit(self, batch: Sequence[Interaction]) -> None:
        """Return once ``batch`` is journaled; raise :class:`NotDurable` if it could not be.

        Callers take the receipt time and submit without awaiting in between, so batches
        queue in receipt order: what makes :meth:`_clock` exact.
        """
        waiter = _Waiter(next(self._serials), batch)
        self.pending += len(batch)
        self._arrivals[waiter.serial] = batch[0].received_at
        self._to_writer.send_nowait(waiter)
        await waiter.done.wait()
        if waiter.error is not None:
            raise NotDurable(waiter.error)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the writer, the aggregator and the periodic fsync until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._write_loop)
            nursery.start_soon(self._aggregate_loop)
            if self.fsync == "everysec":
                nursery.start_soon(self._sync_loop)
            task_status.started()

    async def _write_loop(self) -> None:
        while True:
            await self._commit(await everything_waiting(self._writer_inbox))

    async def _commit(self, group: list[_Waiter]) -> None:
        batches = [waiter.batch for waiter in group]
        before = self.journal.position
        try:
            self.journal.append_group(batches)
            if self.fsync == "always":
                await self._sync_or_cut_back(before)
            else:
                self._dirty = True
        except OSError as error:
            log.error("journal write failed: %s", error)
            self.unwritable = f"the journal cannot be written: {error}"
            self._fail(group, f"{error}")
            return
        self.unwritable = None
        serials = [waiter.serial for waiter in group]
        self._to_aggregator.send_nowait(_Group(batches, serials, self.journal.position))
        for waiter in group:
            waiter.done.set()

    async def _sync_or_cut_back(self, before: Position) -> None:
        """``fsync``; if that fails, remove the records again, since nobody will be told
        they were accepted (a replay must not count them)."""
        try:
            with FSYNC_SECONDS.time():
                await trio.to_thread.run_sync(self.journal.detached_sync())
        except OSError:
            self.journal.cut_back(before)
            raise

    def _fail(self, group: list[_Waiter], message: str) -> None:
        for waiter in group:
            self.pending -= len(waiter.batch)
            del self._arrivals[waiter.serial]
            waiter.error = message
            waiter.done.set()

    async def _aggregate_loop(self) -> None:
        next_expiry = trio.current_time()
        while True:
            group = None
            with trio.move_on_at(next_expiry):
                group = await self._aggregator_inbox.receive()
            if group is not None:
                # No checkpoint from here to ``_applied``: neither cancellation nor another
                # task (a snapshot capture) can see a group half applied.
                self._apply(group)
            if trio.current_time() >= next_expiry:
                self.aggregator.expire(self._clock())
                next_expiry = trio.current_time() + EXPIRY_SECONDS

    def _apply(self, group: _Group) -> None:
        for batch in group.batches:
            self.aggregator.apply(batch)
        self._applied(group)

    def _applied(self, group: _Group) -> None:
        for batch, serial in zip(group.batches, group.serials, strict=True):
            self.pending -= len(batch)
            del self._arrivals[serial]
        self.applied_position = group.position

    def lag(self, now: float) -> float:
        """Seconds the oldest acknowledged interaction not yet counted has waited."""
        oldest = next(iter(self._arrivals.values()), None)
        return 0.0 if oldest is None else max(0.0, now - oldest)

    def _clock(self) -> float:
        """The time sessions may be closed at: now, but never past the receipt time of an
        interaction still on its way to the aggregator, which a replay would apply first."""
        oldest = next(iter(self._arrivals.values()), math.inf)
        return min(time.time(), oldest)

    def drain(self) -> None:
        """Apply every journaled batch still queued: at shutdown, before the last snapshot."""
        while True:
            try:
                group = self._aggregator_inbox.receive_nowait()
            except trio.WouldBlock:
                return
            self._apply(group)

    async def _sync_loop(self) -> None:
        while True:
            await trio.sleep(1)
            if self._dirty:
                self._dirty = False
                try:
                    with FSYNC_SECONDS.time():
                        await trio.to_thread.run_sync(self.journal.detached_sync())
                except OSError as error:
                    self._dirty = True
                    self.unwritable = f"the journal cannot be synced: {error}"
                    log.error("journal fsync failed (will retry): %s", error)
                else:
                    self.unwritable = None
