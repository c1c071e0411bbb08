"""The aggregate side of a cluster: partitions shared out by leases, one aggregator each.

Each partition is owned by one aggregate node at a time, through a lease in Redis that the
node's :class:`~engauge.cluster.leases.LeaseKeeper` renews every ``RENEW_SECONDS`` and that
expires ``LEASE_SECONDS`` after its owner stopped renewing it (``kill -9``, a lost
network): then another node takes it. Live nodes heartbeat into a sorted set, so each knows
its fair share of the partitions and hands surplus ones over when a node joins.

An owned partition has an ordinary :class:`Aggregator`. Taking one restores its newest
snapshot and replays its stream after the snapshot's offset; then the node reads the stream
as it grows, publishes what each flush merged every :data:`TICK_SECONDS` for dashboard
nodes (:class:`Changes`), and snapshots every ``ENGAUGE_SNAPSHOTEVERY`` seconds, from a
forked child as the single process does. Every write to Redis that speaks for a partition
(its view, its snapshot, trimming its stream, giving its lease back) runs as a script that
first checks the lease is still the writer's own, so a node that lost a lease while paused
cannot overwrite its successor.

The stream is trimmed only up to the older of the two snapshots kept, so no entry is
dropped that a readable snapshot does not cover.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import msgspec
import trio
from coredis import PureToken
from coredis.response.types import StreamEntry

from engauge.cluster import layout
from engauge.cluster.leases import LEASE_SECONDS, RENEW_SECONDS, LeaseKeeper
from engauge.cluster.log import BATCH_FIELD
from engauge.cluster.shared import (
    FAILURES,
    Redis,
    as_bytes,
    as_text,
    settings_of,
)
from engauge.snapshotter import encode_in_child
from engauge.store import snapshot as snapshots
from engauge.store.journal import decode_batch
from engauge.store.snapshot import Snapshot
from engauge.stream.aggregator import Aggregator, BucketKey
from engauge.stream.bucket import Bucket
from engauge.stream.calendar import Calendar
from engauge.stream.settings import Settings

log = logging.getLogger("engauge.cluster.owner")

TICK_SECONDS = 1.0
"""How often each partition closes due sessions and publishes what changed."""
BACKLOG_TICK_SECONDS = 5.0
CHECKPOINT_SECONDS = 30.0
"""How often a partition's view is brought up to date (its changes since are replayed by a
dashboard node that loads it)."""
READ_COUNT = 64
"""Stream entries read per partition at a time (each one ingest group commit)."""
BLOCK_MILLISECONDS = 500
APPLY_SLICE_SECONDS = 0.05
"""Longest the node applies entries before letting its other tasks (lease renewal) run."""
INGEST_SLACK_SECONDS = 2.0
"""How long before it reaches its stream an interaction may have been received: sessions
are closed no later than that before the newest moment the stream was read up to, so an
interaction still on its way does not find its session closed (the single process's
aggregator never closes a session past an interaction it has acknowledged)."""
STOP_SECONDS = 30.0
"""What a graceful stop may spend on final snapshots and handing its partitions over."""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
STORE_SNAPSHOT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local function id(text)
  local milliseconds, sequence = string.match(text, '^(%d+)-(%d+)$')
  return tonumber(milliseconds), tonumber(sequence)
end
local newest = redis.call('HGET', KEYS[2], 'offset')
if newest then
  local kept_ms, kept_seq = id(newest)
  local new_ms, new_seq = id(ARGV[3])
  if new_ms < kept_ms or (new_ms == kept_ms and new_seq <= kept_seq) then return 2 end
  redis.call('RENAME', KEYS[2], KEYS[3])
end
redis.call('HSET', KEYS[2], 'data', ARGV[2], 'offset', ARGV[3], 'entries', ARGV[4])
local kept = redis.call('HGET', KEYS[3], 'offset')
if kept then
  local milliseconds, sequence = id(kept)
  redis.call('XTRIM', KEYS[4], 'MINID', milliseconds .. '-' .. (sequence + 1))
end
return 1
"""
PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local sequence = redis.call('INCR', KEYS[2])
local mode = ARGV[2]
local id
if mode == 'reset' then
  id = redis.call('XADD', KEYS[3], '*', 'sequence', sequence, 'reset', 1)
  redis.call('DEL', KEYS[4])
else
  id = redis.call('XADD', KEYS[3], '*', 'sequence', sequence, 'delta', ARGV[3])
end
if mode ~= 'delta' then
  local removed = tonumber(ARGV[4])
  for i = 5, 4 + removed do redis.call('HDEL', KEYS[4], ARGV[i]) end
  for i = 5 + removed, #ARGV, 2 do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]) end
  redis.call('HSET', KEYS[4], '~sequence', sequence)
  redis.call('XTRIM', KEYS[3], 'MINID', id)
end
return sequence
"""
STREAM_ENDS = """
local found = {}
for i, stream in ipairs(KEYS) do
  local added, oldest = 0, ''
  if redis.call('EXISTS', stream) == 1 then
    local info = redis.call('XINFO', 'STREAM', stream)
    for j = 1, #info, 2 do
      if info[j] == 'entries-added' then added = info[j + 1] end
    end
    local waiting = redis.call('XRANGE', stream, '(' .. ARGV[i], '+', 'COUNT', 1)
    if #waiting > 0 then oldest = waiting[1][1] end
  end
  found[i] = {added, oldest}
end
return found
"""
DELTA, CHECKPOINT, RESET = "delta", "checkpoint", "reset"
"""How a publication goes: a change only; a change and the view brought up to date with
the buckets changed since the last checkpoint; or the whole view replaced (a new owner)."""


@attrs.define(eq=False)
class Changes:
    """What a partition's flushes did since its last publication, encoded as they did it
    (a :class:`FlushObserver`): ``[partial, fields]`` for a partial merged into the buckets
    at ``fields``, ``[None, [field]]`` for a bucket dropped. Dashboard nodes repeat them in
    order on their copies, so the copies stay equal to the owner's buckets."""

    steps: list[list[Any]] = attrs.field(factory=list)
    unsaved: set[BucketKey] = attrs.field(factory=set)
    """Buckets changed or dropped since the view's last checkpoint."""

    def merged(self, partial: Bucket, keys: list[BucketKey]) -> None:
        fields = [layout.bucket_field(key) for key in keys]
        self.steps.append([snapshots.encode_value(partial), fields])
        self.unsaved.update(keys)

    def dropped(self, key: BucketKey) -> None:
        self.steps.append([None, [layout.bucket_field(key)]])
        self.unsaved.add(key)


@attrs.define(eq=False)
class Partition:
    """A partition this node owns (``token`` is its lease's value) and how far it got."""

    number: int
    token: str
    aggregator: Aggregator
    offset: str = "0-0"
    """The id of the last stream entry applied."""
    entries: int = 0
    """Stream entries applied since the stream began: with Redis' count of entries added,
    the lag."""
    ready: bool = False
    """Recovered: read, published and snapshotted from now on."""
    reset: bool = True
    """The next publication replaces the partition's whole view."""
    published: int = -1
    changes: Changes = attrs.field(factory=Changes)
    checkpointed_at: float = 0.0
    writing: trio.Lock = attrs.field(factory=trio.Lock)
    """Held while publishing or snapshotting, so the partition's writes reach Redis in the
    order they were taken."""
    caught_up_at: float = 0.0
    behind: bool = False
    """The last read found more entries than it took: a backlog."""
    ticked_at: float = 0.0
    """When the stream was last read to its end."""
    snapshotted: tuple[str, int] | None = None


@attrs.define(frozen=True)
class CalendarSetup:
    """How an aggregator of this cluster cuts buckets and sessions."""

    calendar: Calendar
    session_delay: float
    timezone: str
    week_start: int


class AggregateNode:
    """Owns a fair share of ``partitions`` and keeps their aggregators.

    ``redis`` and ``reader`` are clients of ``url`` (the reader for the blocking stream
    reads); the lease keeper's thread opens one of its own.
    """

    def __init__(
        self,
        url: str,
        redis: Redis,
        reader: Redis,
        partitions: int,
        *,
        setup: CalendarSetup,
        snapshot_every: float,
    ) -> None:
        self.redis = redis
        self.reader = reader
        self.partitions = partitions
        self.setup = setup
        self.snapshot_every = snapshot_every
        self.node = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.owned: dict[int, Partition] = {}
        self.settings = Settings()
        self._settings_stored: bytes | None = None
        self._leases = 0
        self._rounds = 0
        self._leaving: dict[int, Partition] = {}
        """Partitions being handed over: no longer owned, their leases still held."""
        self.keeper = LeaseKeeper(url, self.node)
        self._release = redis.register_script(RELEASE)
        self._store_snapshot = redis.register_script(STORE_SNAPSHOT)
        self._publish_view = redis.register_script(PUBLISH)
        self._stream_ends = redis.register_script(STREAM_ENDS)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Take, aggregate and hand over partitions until cancelled; then :meth:`stop`."""
        self.keeper.start()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._every, RENEW_SECONDS, lambda: self._lease_round(nursery))
                nursery.start_soon(self._read_loop)
                nursery.start_soon(self._every, TICK_SECONDS, self._tick_all)
                nursery.start_soon(self._every, self.snapshot_every, self._snapshot_all)
                task_status.started()
        finally:
            with trio.move_on_after(STOP_SECONDS) as stopping:
                stopping.shield = True
                await self._stop()

    async def _every(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` now and then every ``seconds``; Redis failures are logged and retried."""
        while True:
            try:
                await step()
            except FAILURES as error:
                log.warning("%s failed (will retry): %s", step.__name__, error)
            await trio.sleep(seconds)

    # -- leases ------------------------------------------------------------------------

    async def _lease_round(self, nursery: trio.Nursery) -> None:
        """Drop the partitions whose leases the keeper found lost, then move towards a fair
        share: hand a surplus partition over, or take free ones. The first round only
        waits, so that nodes starting together see each other before taking any."""
        self.keeper.progress()
        self.keeper.check()
        while True:
            try:
                number, token = self.keeper.lost.get_nowait()
            except queue.Empty:
                break
            part = self.owned.get(number)
            if part is not None and part.token == token:
                self._drop(part, "its lease expired or another node took it")
        self._rounds += 1
        await self._follow_settings()
        share = math.ceil(self.partitions / self.keeper.live_nodes)
        ready = sorted(self._ready(), key=_number)
        try:
            if len(self.owned) > share and ready:
                await self._hand_over(ready[-1])  # one a round, so the node stays responsive
            elif len(self.owned) < share and self._rounds > 1:
                await self._take_free(share, nursery)
        finally:
            self._share_tokens()

    def _share_tokens(self) -> None:
        """Give the keeper the leases to renew: a new dict, never one it may be reading."""
        held = {**self.owned, **self._leaving}
        self.keeper.tokens = {number: part.token for number, part in held.items()}

    async def _take_free(self, share: int, nursery: trio.Nursery) -> None:
        free = [number for number in range(self.partitions) if number not in self.owned]
        random.shuffle(free)  # nodes starting together do not all race for the same ones
        for number in free:
            if len(self.owned) >= share:
                return
            self._leases += 1
            token = f"{self.node}:{self._leases}"
            taken = await self.redis.set(
                layout.lease(number),
                token,
                condition=PureToken.NX,
                px=int(LEASE_SECONDS * 1000),
            )
            if taken:
                part = Partition(number, token, self._new_aggregator())
                self.owned[number] = part
                nursery.start_soon(self._take, part)

    def _new_aggregator(self) -> Aggregator:
        return Aggregator(self.setup.calendar, self.setup.session_delay, self.settings)

    async def _take(self, part: Partition) -> None:
        """Recover a partition just leased: its snapshot, then its stream after it."""
        try:
            await self._recover(part)
        except FAILURES as error:
            log.warning("partition %d: recovery failed, handing it back: %s", part.number, error)
            self._drop(part, "its recovery failed")
            with contextlib.suppress(*FAILURES):  # else its lease expires
                await self._give_back(part)
            return
        if self.owned.get(part.number) is part:
            part.ready = True
            log.info(
                "partition %d taken at %s (%d interactions)",
                part.number,
                part.offset,
                part.aggregator.applied,
            )

    async def _hand_over(self, part: Partition) -> None:
        """Give a partition to another node: final view and snapshot first, so the next
        owner starts where this one stopped."""
        self.owned.pop(part.number, None)
        self._leaving[part.number] = part  # its lease is renewed until it is given back
        try:
            await self._publish(part)
            if await self._snapshot(part):
                log.info("partition %d handed over at %s", part.number, part.offset)
            await self._give_back(part)
        finally:
            del self._leaving[part.number]
            self._share_tokens()

    async def _give_back(self, part: Partition) -> None:
        await self._release(keys=[layout.lease(part.number)], args=[part.token])

    def _drop(self, part: Partition, why: str) -> None:
        if self.owned.get(part.number) is part:
            del self.owned[part.number]
            log.warning("partition %d dropped: %s", part.number, why)

    async def _follow_settings(self) -> None:
        stored = await self.redis.get(layout.SETTINGS)
        if stored == self._settings_stored:
            return
        self._settings_stored = stored
        self.settings = settings_of(stored)
        for part in self.owned.values():
            part.aggregator.update_settings(self.settings)

    # -- recovery and reading ----------------------------------------------------------

    async def _recover(self, part: Partition) -> None:
        stored = await self._newest_snapshot(part.number)
        if stored is not None:
            snapshot, part.entries = stored
            snapshots.warn_if_cut_differently(snapshot, self.setup.timezone, self.setup.week_start)
            part.aggregator.restore(snapshot.state)
            part.aggregator.update_settings(self.settings)
            part.offset = layout.entry_id(snapshot.position)
        while self.owned.get(part.number) is part:
            asked = time.time()
            entries = await self.reader.xrange(
                layout.log(part.number), f"({part.offset}", "+", count=READ_COUNT * 16
            )
            await self._apply(part, entries)
            if len(entries) < READ_COUNT * 16:
                part.caught_up_at = asked
                break
        part.aggregator.expire(self._clock(part))

    async def _newest_snapshot(self, number: int) -> tuple[Snapshot, int] | None:
        """The newest readable snapshot of a partition and its entry count; a damaged one
        falls back to the one before (:class:`NewerFormatError` stops the node)."""
        for key in (layout.snapshot(number), layout.previous_snapshot(number)):
            stored = await self.redis.hgetall(key)
            if not stored:
                continue
            try:
                snapshot = await trio.to_thread.run_sync(snapshots.decode, stored[b"data"])
            except snapshots.SnapshotError as error:
                log.warning("partition %d: snapshot %s skipped: %s", number, key, error)
                continue
            return snapshot, int(stored[b"entries"])
        return None

    async def _read_loop(self) -> None:
        while True:
            ready = {number: part for number, part in self.owned.items() if part.ready}
            if not ready:
                await trio.sleep(BLOCK_MILLISECONDS / 1000)
                continue
            asked = time.time()
            try:
                found = await self.reader.xread(
                    {layout.log(number): part.offset for number, part in ready.items()},
                    count=READ_COUNT,
                    block=BLOCK_MILLISECONDS,
                )
            except FAILURES as error:
                log.warning("reading the partition streams failed (will retry): %s", error)
                await trio.sleep(RENEW_SECONDS)
                continue
            for number, part in ready.items():
                entries = (found or {}).get(layout.log(number).encode(), ())
                await self._apply(part, entries)
                part.behind = len(entries) >= READ_COUNT
                if not part.behind:
                    part.caught_up_at = asked

    async def _apply(self, part: Partition, entries: Sequence[StreamEntry]) -> None:
        """Apply stream entries in order, letting other tasks run every
        :data:`APPLY_SLICE_SECONDS`; stop if the partition is dropped meanwhile."""
        slice_ends = time.monotonic() + APPLY_SLICE_SECONDS
        for entry in entries:
            if self.owned.get(part.number) is not part:
                return
            try:
                batch = decode_batch(as_bytes(entry.field_values[BATCH_FIELD]))
            except (KeyError, msgspec.DecodeError):
                log.error(
                    "partition %d: entry %s is not a batch of interactions; skipped",
                    part.number,
                    as_text(entry.identifier),
                )
            else:
                part.aggregator.apply(batch)
            part.offset = as_text(entry.identifier)
            part.entries += 1
            if time.monotonic() >= slice_ends:
                await trio.lowlevel.checkpoint()
                slice_ends = time.monotonic() + APPLY_SLICE_SECONDS

    async def _tick_all(self) -> None:
        """Each partition's once-a-second work: close the sessions due, drop the buckets
        past retention, publish. A partition working through a backlog ticks only every
        :data:`BACKLOG_TICK_SECONDS`: each tick flushes (merges the partials into seven
        intervals, encodes them for publication), and fewer, bigger flushes drain a backlog
        faster."""
        now = time.monotonic()
        for part in self._ready():
            if self.owned.get(part.number) is not part:
                continue  # dropped or handed over while an earlier one was published
            if part.behind and now - part.ticked_at < BACKLOG_TICK_SECONDS:
                continue
            part.ticked_at = now
            part.aggregator.expire(self._clock(part))
            await trio.lowlevel.checkpoint()
            if part.reset or part.aggregator.version != part.published or self._due(part):
                await self._publish(part)

    @staticmethod
    def _clock(part: Partition) -> float:
        return min(time.time(), part.caught_up_at) - INGEST_SLACK_SECONDS

    def _ready(self) -> list[Partition]:
        return [part for part in self.owned.values() if part.ready]

    # -- publishing and snapshots ------------------------------------------------------

    @staticmethod
    def _due(part: Partition) -> bool:
        """Whether the view should be checkpointed: what changed since is kept in the
        partition's change stream until then, and replayed by every node that loads it."""
        waited = time.monotonic() - part.checkpointed_at >= CHECKPOINT_SECONDS
        return waited and bool(part.changes.unsaved)

    async def _publish(self, part: Partition) -> None:
        """Publish what the partition's flushes did since the last publication as one
        change. A new owner replaces the whole view instead; now and then the view is
        brought up to date (checkpointed) so the change stream can be trimmed. After a
        failed publication the next one replaces the whole view, since the changes taken
        are gone."""
        async with part.writing:
            await self._publish_now(part)

    async def _publish_now(self, part: Partition) -> None:
        version = part.aggregator.version
        if part.reset:
            mode = RESET
            buckets = part.aggregator.every_bucket()
            part.changes = Changes()
            part.aggregator.observer = part.changes
            steps: list[list[Any]] = []
        else:
            mode = CHECKPOINT if self._due(part) else DELTA
            part.aggregator.flush()
            steps, part.changes.steps = part.changes.steps, []
            buckets = {}
            if mode == CHECKPOINT:
                found = {key: part.aggregator.bucket_at(key) for key in part.changes.unsaved}
                buckets = {key: bucket for key, bucket in found.items() if bucket is not None}
        counts = [part.aggregator.applied, part.aggregator.duplicates]
        delta = msgspec.msgpack.encode({"counts": counts, "steps": steps})
        removed: list[str] = []
        fields: list[Any] = []
        saved: set[BucketKey] = set()
        if mode != DELTA:
            saved, part.changes.unsaved = part.changes.unsaved, set()
            removed = [layout.bucket_field(key) for key in saved if key not in buckets]
            fields = [layout.COUNTS_FIELD, msgspec.msgpack.encode(counts)]
            for key, bucket in buckets.items():
                fields += [layout.bucket_field(key), snapshots.encode_value(bucket)]
        part.reset = True
        sequence: object = await self._publish_view(
            keys=[
                layout.lease(part.number),
                layout.sequence(part.number),
                layout.changes(part.number),
                layout.view(part.number),
            ],
            args=[part.token, mode, delta, len(removed), *removed, *fields],
        )
        if not sequence:
            self._drop(part, "its lease expired or another node took it")
            return
        part.reset = False
        part.published = version
        if mode != DELTA:
            part.checkpointed_at = time.monotonic()

    async def _snapshot_all(self) -> None:
        for part in self._ready():
            owned = self.owned.get(part.number) is part  # not dropped or handed over since
            if owned and part.snapshotted != (part.offset, part.aggregator.version):
                await self._snapshot(part)

    async def _snapshot(self, part: Partition) -> bool:
        """Store a snapshot with its stream offset (encoded by a forked child) and trim the
        stream to what the older kept snapshot covers; whether it was stored."""
        async with part.writing:
            return await self._snapshot_now(part)

    async def _snapshot_now(self, part: Partition) -> bool:
        moment = (part.offset, part.aggregator.version)
        snapshot = Snapshot(
            position=layout.position_of(part.offset),
            timezone=self.setup.timezone,
            week_start=self.setup.week_start,
            state=part.aggregator.state(),
        )
        entries = part.entries
        data = await encode_in_child(snapshot)
        stored: object = await self._store_snapshot(
            keys=[
                layout.lease(part.number),
                layout.snapshot(part.number),
                layout.previous_snapshot(part.number),
                layout.log(part.number),
            ],
            args=[part.token, data, moment[0], entries],
        )
        if not stored:
            log.warning("partition %d: snapshot refused, its lease is lost", part.number)
            self._drop(part, "its lease expired or another node took it")
            return False
        part.snapshotted = moment
        return True

    async def _stop(self) -> None:
        """At a graceful stop: hand every partition over and leave the set of live nodes."""
        for part in sorted(self._ready(), key=_number):
            try:
                await self._hand_over(part)
            except FAILURES as error:
                log.warning(
                    "partition %d: not handed over (its lease will expire): %s", part.number, error
                )
        self.keeper.stop()
        with contextlib.suppress(*FAILURES):
            await self.redis.zrem(layout.AGGREGATORS, [self.node])

    # -- health ------------------------------------------------------------------------

    async def lag(self) -> list[dict[str, Any]]:
        """Per owned partition: its state, offset, and how far behind its stream it is, in
        entries and in seconds (the age of the oldest entry not yet applied), read in one
        round trip."""
        parts = sorted(self.owned.values(), key=_number)
        try:
            found: Any = await self._stream_ends(
                keys=[layout.log(part.number) for part in parts],
                args=[part.offset for part in parts],
            )
        except FAILURES as error:
            return [{"partition": part.number, "error": str(error)} for part in parts]
        rows = []
        now = time.time()
        for part, (added, oldest) in zip(parts, found, strict=True):
            waiting = as_text(oldest)
            behind = now - layout.position_of(waiting).segment / 1000 if waiting else 0.0
            rows.append(
                {
                    "partition": part.number,
                    "state": "aggregating" if part.ready else "recovering",
                    "offset": part.offset,
                    "lagEntries": max(0, int(added) - part.entries),
                    "lagSeconds": round(max(0.0, behind), 3),
                }
            )
        return rows


def _number(part: Partition) -> int:
    return part.number
