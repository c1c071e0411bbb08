"""The path of accepted interactions: journal group commit, then the aggregator.

Requests hand their validated batch to :meth:`Pipeline.submit` and wait. One writer task
takes every batch waiting, writes them as one journal record (and ``fsync``s it when
``ENGAUGE_FSYNC=always``), passes them on to the aggregator task in the same order, then
wakes the requests: so a ``202`` is only ever sent for journaled interactions, and the
aggregator sees them in journal order, exactly as a replay will.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import attrs
import trio

from engauge.store.journal import Journal, JournalError, Position
from engauge.stream.aggregator import Aggregator
from engauge.stream.interaction import Interaction

log = logging.getLogger("engauge.pipeline")

MAX_PENDING = 200_000
"""Interactions accepted but not yet counted before new requests get ``503``."""
EXPIRY_SECONDS = 1.0


class Overloaded(Exception):
    """The aggregator is behind by more than :data:`MAX_PENDING`; retry shortly."""


@attrs.define(eq=False)
class _Waiter:
    batch: Sequence[Interaction]
    done: trio.Event = attrs.field(factory=trio.Event)
    error: JournalError | None = None


class Pipeline:
    """Owns the journal writer and the aggregator task; ``fsync`` is the ENGAUGE_FSYNC mode."""

    def __init__(self, journal: Journal, aggregator: Aggregator, fsync: str) -> None:
        self.journal = journal
        self.aggregator = aggregator
        self.fsync = fsync
        self.pending = 0
        self._to_writer, self._writer_inbox = trio.open_memory_channel[_Waiter](math.inf)
        self._to_aggregator, self._aggregator_inbox = trio.open_memory_channel[
            tuple[list[Interaction], Position]
        ](math.inf)
        self._dirty = False
        self.applied_position = journal.position
        """The journal position up to which the aggregator has applied every record."""

    def check_capacity(self) -> None:
        """Raise :class:`Overloaded` when the aggregator is too far behind to take more."""
        if self.pending >= MAX_PENDING:
            raise Overloaded

    async def submit(self, batch: Sequence[Interaction]) -> None:
        """Return once ``batch`` is journaled; raise :class:`JournalError` if it could not be."""
        waiter = _Waiter(batch)
        self.pending += len(batch)
        self._to_writer.send_nowait(waiter)
        await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error

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
            group = [await self._writer_inbox.receive()]
            while True:
                try:
                    group.append(self._writer_inbox.receive_nowait())
                except trio.WouldBlock:
                    break
            await self._commit(group)

    async def _commit(self, group: list[_Waiter]) -> None:
        interactions = [item for waiter in group for item in waiter.batch]
        try:
            self.journal.append(interactions)
            if self.fsync == "always":
                await trio.to_thread.run_sync(self.journal.detached_sync())
            else:
                self._dirty = True
        except OSError as error:
            failure = error if isinstance(error, JournalError) else JournalError(str(error))
            log.error("journal write failed: %s", failure)
            self.pending -= len(interactions)
            for waiter in group:
                waiter.error = failure
                waiter.done.set()
            return
        self._to_aggregator.send_nowait((interactions, self.journal.position))
        for waiter in group:
            waiter.done.set()

    async def _aggregate_loop(self) -> None:
        aggregator = self.aggregator
        next_expiry = trio.current_time()
        while True:
            with trio.move_on_at(next_expiry):
                self._apply(await self._aggregator_inbox.receive())
            if trio.current_time() >= next_expiry:
                aggregator.expire(time.time())
                next_expiry = trio.current_time() + EXPIRY_SECONDS

    def _apply(self, item: tuple[list[Interaction], Position]) -> None:
        batch, position = item
        self.aggregator.apply(batch)
        self.pending -= len(batch)
        self.applied_position = position

    def drain(self) -> None:
        """Apply every journaled batch still queued: at shutdown, before the last snapshot."""
        while True:
            try:
                self._apply(self._aggregator_inbox.receive_nowait())
            except trio.WouldBlock:
                return

    async def _sync_loop(self) -> None:
        while True:
            await trio.sleep(1)
            if self._dirty:
                self._dirty = False
                await trio.to_thread.run_sync(self.journal.detached_sync())
