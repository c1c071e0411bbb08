"""The ingest side of a cluster: accepted interactions appended to the partition streams.

Requests hand their validated batch to :meth:`PartitionedLog.submit` and wait, as with the
single process's journal. One writer task takes every batch waiting, splits the
interactions by user into partitions and appends one stream entry per partition in one
``MULTI``/``EXEC`` round trip; only when Redis has answered are the requests woken. So a
``202`` means Redis holds the interactions (on disk too, with ``appendfsync always``),
and a user's interactions reach their partition in the order they were accepted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import attrs
import trio

from engauge.cluster import layout
from engauge.cluster.shared import FAILURES, Redis
from engauge.pipeline import MAX_PENDING, NotDurable, Overloaded, everything_waiting
from engauge.store.journal import encode_batch
from engauge.stream.interaction import Interaction

log = logging.getLogger("engauge.cluster.log")

BATCH_FIELD = b"batch"
"""The field of a partition stream entry holding its interactions (journal encoding)."""


@attrs.define(eq=False)
class _Waiter:
    batch: Sequence[Interaction]
    done: trio.Event = attrs.field(factory=trio.Event)
    error: str | None = None


class PartitionedLog:
    """Appends accepted interactions to the ``partitions`` streams of ``redis``."""

    def __init__(self, redis: Redis, partitions: int) -> None:
        self.redis = redis
        self.partitions = partitions
        self.pending = 0
        """Interactions accepted and not yet acknowledged by Redis."""
        self.unwritable: str | None = None
        """Why Redis cannot take interactions now (the last append failed), or None."""
        self._to_writer, self._inbox = trio.open_memory_channel[_Waiter](math.inf)

    def check_capacity(self) -> None:
        """Raise :class:`Overloaded` while Redis is too far behind to take more."""
        if self.pending >= MAX_PENDING:
            raise Overloaded

    async def submit(self, batch: Sequence[Interaction]) -> None:
        """Return once Redis holds ``batch``; raise :class:`NotDurable` if it could not."""
        waiter = _Waiter(batch)
        self.pending += len(batch)
        self._to_writer.send_nowait(waiter)
        await waiter.done.wait()
        if waiter.error is not None:
            raise NotDurable(waiter.error)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Append waiting batches until cancelled."""
        task_status.started()
        while True:
            await self._append(await everything_waiting(self._inbox))

    async def _append(self, group: list[_Waiter]) -> None:
        parts: dict[int, list[Interaction]] = {}
        for waiter in group:
            for interaction in waiter.batch:
                partition = layout.partition_of(interaction.user, self.partitions)
                parts.setdefault(partition, []).append(interaction)
        error = None
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for partition, interactions in parts.items():
                    pipe.xadd(layout.log(partition), {BATCH_FIELD: encode_batch(interactions)})
        except FAILURES as failure:
            log.error("appending to the partition streams failed: %s", failure)
            error = f"Redis did not take the interactions: {failure}"
        self.unwritable = error
        for waiter in group:
            self.pending -= len(waiter.batch)
            waiter.error = error
            waiter.done.set()
