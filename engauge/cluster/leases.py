"""Lease renewal for an aggregate node, from a thread of its own.

A node's event loop can be busy for seconds at a time — a flush after a backlog, the
expiry of many sessions — and a lease that waits for it expires, so the node loses its
partitions and replays them from their snapshots. So the leases are renewed, and the node's
heartbeat sent, by a thread with its own event loop and Redis connection: Python switches
threads every few milliseconds however busy the other one is. The node still has to show
progress: if its loop makes none for :data:`WEDGED_SECONDS`, the keeper stops renewing, so
the partitions of a wedged node move on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import trio
from coredis.commands.script import Script

from engauge.cluster import layout
from engauge.cluster.shared import FAILURES, Redis, connect

log = logging.getLogger("engauge.cluster.leases")

LEASE_SECONDS = 10.0
"""How long a partition stays with a node that stopped renewing its lease."""
RENEW_SECONDS = 2.0
WEDGED_SECONDS = 60.0
"""How long a node's event loop may go without progress before its leases are let go."""

RENEW = """
local renewed = {}
for i, lease in ipairs(KEYS) do
  renewed[i] = 0
  if redis.call('GET', lease) == ARGV[i + 1] then
    renewed[i] = redis.call('PEXPIRE', lease, ARGV[1])
  end
end
return renewed
"""


class KeeperStopped(RuntimeError):
    """The lease keeper's thread ended unexpectedly."""


class LeaseKeeper:
    """Renews the leases in :attr:`tokens` every :data:`RENEW_SECONDS` and heartbeats
    ``node`` into the set of live aggregate nodes."""

    def __init__(self, url: str, node: str) -> None:
        self.url = url
        self.node = node
        self.tokens: dict[int, str] = {}
        """Partition → lease token. The node replaces the whole dict, never changes it, so
        the thread always reads a whole one."""
        self.lost: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        """Leases found taken or expired: (partition, token)."""
        self.live_nodes = 1
        """Aggregate nodes alive at the last heartbeat, this one included."""
        self.failure: str | None = None
        """Why the last round failed (Redis unreachable), or None."""
        self._progress = time.monotonic()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=trio.run, args=(self._run,), name="engauge-leases", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(LEASE_SECONDS)

    def progress(self) -> None:
        """Called by the node's event loop: it is not wedged."""
        self._progress = time.monotonic()

    def check(self) -> None:
        """Raise :class:`KeeperStopped` if the thread ended (it only ends when stopped):
        without it nothing renews the leases, so the node must not go on."""
        if not self._thread.is_alive() and not self._stopping.is_set():
            raise KeeperStopped("the lease keeper thread ended; see the error logged above")

    async def _run(self) -> None:
        redis = connect(self.url)
        async with redis:
            renew = redis.register_script(RENEW)
            wedged = False
            while not self._stopping.is_set():
                if time.monotonic() - self._progress > WEDGED_SECONDS:
                    if not wedged:
                        log.error(
                            "the event loop made no progress for %.0f s: leases let go",
                            WEDGED_SECONDS,
                        )
                    wedged = True
                else:
                    wedged = False
                    try:
                        await self._round(redis, renew)
                        self.failure = None
                    except FAILURES as error:
                        self.failure = str(error)
                        log.warning("renewing the leases failed (will retry): %s", error)
                    except Exception:
                        log.exception("the lease keeper failed; the node stops")
                        raise
                with trio.move_on_after(RENEW_SECONDS):
                    while not self._stopping.is_set():  # noqa: ASYNC110 (set by another thread)
                        await trio.sleep(0.1)

    async def _round(self, redis: Redis, renew: Script[bytes]) -> None:
        tokens = self.tokens
        numbers = list(tokens)
        renewed: Any = await renew(
            keys=[layout.lease(number) for number in numbers],
            args=[int(LEASE_SECONDS * 1000), *(tokens[number] for number in numbers)],
        )
        for number, kept in zip(numbers, renewed, strict=True):
            if not kept:
                self.lost.put((number, tokens[number]))
        now = int(time.time() * 1000)
        await redis.zadd(layout.AGGREGATORS, {self.node: now + int(LEASE_SECONDS * 1000)})
        await redis.zremrangebyscore(layout.AGGREGATORS, 0, now)
        self.live_nodes = max(1, await redis.zcard(layout.AGGREGATORS))
