"""A cluster on one machine: aggregation throughput with 1, 2 and 4 aggregate nodes, and
ingest throughput per ingest node, against a real ``redis-server`` (``appendfsync
everysec`` unless said otherwise) and real node processes on 127.0.0.1.

Aggregation: the eight partition streams are filled beforehand, under other names, with
the entries ingest nodes write (per request of 1,000 interactions, one entry per partition,
in the journal encoding). K aggregate nodes start on the empty cluster and settle their
leases to a fair share each; then the filled streams are renamed into place in one
``MULTI`` and the clock runs until every partition's ``lagEntries`` in the nodes'
``/health`` is 0 (``seconds``), and until the counts the partitions published for
dashboard nodes add up to every interaction (``publishedSeconds``). Start-up, to listening
and to leases settled, is reported apart. The streams are not in place when the nodes
start because the first node to run its lease round would take every partition and
recover them alone, and the run would measure that race rather than K nodes.

Ingest: ingest nodes alone (no aggregate node running), fed ``POST /api/interactions``
of 1,000 interactions each by a few client threads per node.

Every run has a fresh ``redis-server`` and processes of its own, killed at its end.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import coredis
import httpx
import msgspec
import trio

from benchmarks.scenarios import API_KEY, PASSWORD, ZONE
from benchmarks.workload import interaction_dicts
from engauge.cluster import layout
from engauge.cluster.log import BATCH_FIELD
from engauge.cluster.shared import as_bytes
from engauge.store.journal import decode_batch, encode_batch
from engauge.stream.interaction import Interaction
from engauge.stream.validation import validate_interaction
from tests.debian import REDIS, install_redis
from tests.redis_server import RedisServer

PARTITIONS = 8
REQUEST = 1000
"""Interactions per ingest request, and per group of entries written to the streams."""
CHUNK = 100_000
"""Interactions generated at a time (then validated, encoded and dropped)."""
STAGED = "benchmark:staged:{}"
"""Where partition ``n``'s stream is filled before it is renamed into place."""
START_SECONDS = 30.0
POLL_SECONDS = 0.1
NOTE = (
    "On a 2-core machine the curve flattens past 2 processes: every node (and the ingest "
    "client) competes for the same two cores, and Redis needs one too."
)


def cluster(
    *,
    interactions: int = 400_000,
    aggregators: tuple[int, ...] = (1, 2, 4),
    requests: int = 500,
    ingest_nodes: tuple[int, ...] = (1, 2),
    connections: int = 4,
    deadline: float = 60.0,
) -> dict[str, Any]:
    """``interactions`` aggregated by each count of ``aggregators``, each run ending after
    ``deadline`` seconds at most; ``requests`` of 1,000 posted to each count of
    ``ingest_nodes`` over ``connections`` connections per node."""
    reason = install_redis()
    if reason is not None:
        return {"skipped": reason}
    now = time.time()
    entries = _stream_entries(interactions, now)
    aggregation = {str(k): _aggregate(entries, interactions, k, deadline) for k in aggregators}
    bodies = [
        httpx.Request("POST", "/", json=interaction_dicts(REQUEST, start=now - 3600, seed=n)).read()
        for n in range(requests)
    ]
    ingest = {str(n): _ingest(bodies, n, connections, "everysec") for n in ingest_nodes}
    durable = _ingest(bodies, 1, connections, "always")
    return {
        "partitions": PARTITIONS,
        "interactions": interactions,
        "streamEntries": len(entries),
        "redis": {"appendfsync": "everysec", "version": _redis_version()},
        "aggregators": aggregation,
        "ingestPerNode": ingest,
        "ingestAppendfsyncAlways": durable,
        "ingest": {
            "requests": requests,
            "interactionsPerRequest": REQUEST,
            "connectionsPerNode": connections,
            "aggregateNodesRunning": 0,
        },
        "note": NOTE,
    }


# -- the streams ------------------------------------------------------------------------


def _stream_entries(count: int, now: float) -> list[tuple[int, bytes]]:
    """(partition, entry payload) for ``count`` interactions, in the order ingest nodes
    would append them: per request of 1,000, one entry per partition, as
    :mod:`engauge.cluster.log` splits a group commit."""
    entries = []
    start = now - count * 0.01
    for first in range(0, count, CHUNK):
        size = min(CHUNK, count - first)
        items = [
            validate_interaction(item, now=now, zone=ZONE)
            for item in interaction_dicts(size, start=start + first * 0.01, seed=1 + first // CHUNK)
        ]
        for offset in range(0, size, REQUEST):
            parts: dict[int, list[Interaction]] = {}
            for interaction in items[offset : offset + REQUEST]:
                parts.setdefault(layout.partition_of(interaction.user, PARTITIONS), []).append(
                    interaction
                )
            entries += [(number, encode_batch(batch)) for number, batch in parts.items()]
    return entries


async def _fill(url: str, entries: list[tuple[int, bytes]]) -> None:
    redis = coredis.Redis.from_url(url, decode_responses=False)
    async with redis:
        for first in range(0, len(entries), 500):
            async with redis.pipeline(transaction=False) as pipe:
                for number, payload in entries[first : first + 500]:
                    pipe.xadd(STAGED.format(number), {BATCH_FIELD: payload})


async def _into_place(url: str) -> None:
    """Every filled stream becomes its partition's stream at once."""
    redis = coredis.Redis.from_url(url, decode_responses=False)
    async with redis, redis.pipeline(transaction=True) as pipe:
        for number in range(PARTITIONS):
            pipe.rename(STAGED.format(number), layout.log(number))


def _redis_version() -> str:
    output = subprocess.run(
        [str(REDIS), "--version"], capture_output=True, text=True, check=False, timeout=20
    ).stdout
    found = re.search(r"v=(\S+)", output)
    return found.group(1) if found else "unknown"


# -- aggregation ------------------------------------------------------------------------


def _aggregate(
    entries: list[tuple[int, bytes]], count: int, nodes: int, deadline: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as base, ExitStack() as stack:
        redis = _redis(stack, Path(base), "everysec")
        trio.run(_fill, redis.url, entries)
        started = time.perf_counter()
        processes = [
            stack.enter_context(_node(redis.url, "aggregate", Path(base) / f"aggregate-{n}.log"))
            for n in range(nodes)
        ]
        urls = [process.url() for process in processes]
        listening = time.perf_counter() - started
        share = math.ceil(PARTITIONS / nodes)
        with _Health(urls) as health:
            settled = health.wait(lambda rows: _settled(rows, share), START_SECONDS)
            settling = time.perf_counter() - started
            if not settled:
                return {"settled": False, "startSeconds": round(settling, 2)}
            logged = [process.log_size() for process in processes]
            trio.run(_into_place, redis.url)
            released = time.perf_counter()
            applied: float | None = None
            published: float | None = None
            while time.perf_counter() - released < deadline:
                if applied is None and _caught_up(health.poll()):
                    applied = time.perf_counter() - released
                if published is None and trio.run(_published, redis.url) >= count:
                    published = time.perf_counter() - released
                if applied is not None and published is not None:
                    break
                time.sleep(POLL_SECONDS)
            last = health.last
        counted = trio.run(_published, redis.url)
        lost = sum(
            process.log_since(size).count(" dropped: ")
            for process, size in zip(processes, logged, strict=True)
        )
    result: dict[str, Any] = {
        "nodes": nodes,
        "listeningSeconds": round(listening, 2),
        "leasesSettledSeconds": round(settling, 2),
        "caughtUp": applied is not None,
        "interactionsPublished": counted,
        "leasesLost": lost,
    }
    if applied is None:
        return {
            **result,
            "gaveUpAfterSeconds": deadline,
            "lagEntriesLeft": sum(row.get("lagEntries", 0) for row in last),
            "partitionsAggregating": len(
                {row["partition"] for row in last if row.get("state") == "aggregating"}
            ),
        }
    rate = count / applied
    result.update(
        seconds=round(applied, 2),
        interactionsPerSecond=round(rate),
        perAggregateNode=round(rate / nodes),
    )
    if published is not None:
        result.update(
            publishedSeconds=round(published, 2),
            publishedPerSecond=round(count / published),
        )
    return result


async def _published(url: str) -> int:
    """Interactions counted in what the partitions published for dashboard nodes: the
    newest change of each partition, or its view when it has no change since."""
    redis = coredis.Redis.from_url(url, decode_responses=False)
    total = 0
    async with redis:
        for number in range(PARTITIONS):
            newest = await redis.xrevrange(layout.changes(number), "+", "-", count=1)
            fields = newest[0].field_values if newest else {}
            if b"delta" in fields:
                total += msgspec.msgpack.decode(as_bytes(fields[b"delta"]))["counts"][0]
                continue
            counts = await redis.hget(layout.view(number), layout.COUNTS_FIELD)
            if counts is not None:
                total += msgspec.msgpack.decode(counts)[0]
    return total


def _settled(rows: list[dict[str, Any]], share: int) -> bool:
    """Every partition owned by one node, none recovering, no node above its fair share."""
    if not _whole(rows):
        return False
    owners: dict[str, int] = {}
    for row in rows:
        owners[row["node"]] = owners.get(row["node"], 0) + 1
    return max(owners.values()) <= share


def _caught_up(rows: list[dict[str, Any]]) -> bool:
    return _whole(rows) and all(row["lagEntries"] == 0 for row in rows)


def _whole(rows: list[dict[str, Any]]) -> bool:
    numbers = sorted(row["partition"] for row in rows)
    return numbers == list(range(PARTITIONS)) and all(
        row.get("state") == "aggregating" for row in rows
    )


class _Health:
    """Polls every node's ``/health`` together; rows are the partitions, tagged by node."""

    def __init__(self, urls: list[str]) -> None:
        self.clients = [httpx.Client(base_url=url, timeout=20) for url in urls]
        self.pool = ThreadPoolExecutor(len(urls))
        self.last: list[dict[str, Any]] = []

    def __enter__(self) -> _Health:
        return self

    def __exit__(self, *_: object) -> None:
        self.pool.shutdown()
        for client in self.clients:
            client.close()

    def poll(self) -> list[dict[str, Any]]:
        """One round of answers, every node asked at once."""
        self.last = [row for rows in self.pool.map(_rows, self.clients) for row in rows]
        return self.last

    def wait(self, done: Callable[[list[dict[str, Any]]], bool], seconds: float) -> bool:
        """Whether ``done(rows)`` came true within ``seconds``."""
        ends = time.perf_counter() + seconds
        while time.perf_counter() < ends:
            if done(self.poll()):
                return True
            time.sleep(POLL_SECONDS)
        return False


def _rows(client: httpx.Client) -> list[dict[str, Any]]:
    try:
        report = client.get("/health").json()
    except httpx.HTTPError:
        return []
    return [{**row, "node": report["node"]} for row in report.get("partitions", ())]


# -- ingest ---------------------------------------------------------------------------


def _ingest(bodies: list[bytes], nodes: int, connections: int, appendfsync: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as base, ExitStack() as stack:
        redis = _redis(stack, Path(base), appendfsync)
        urls = [
            stack.enter_context(_node(redis.url, "ingest", Path(base) / f"ingest-{n}.log")).url()
            for n in range(nodes)
        ]
        headers = {"api-key": API_KEY, "content-type": "application/json"}
        clients = [
            stack.enter_context(httpx.Client(base_url=url, headers=headers, timeout=60))
            for url in urls
            for _ in range(connections)
        ]
        for client in clients:
            client.get("/health").raise_for_status()  # connected before the clock starts
        failures: list[int] = []

        def post(client: httpx.Client, share: list[bytes]) -> None:
            for body in share:
                status = client.post("/api/interactions", content=body).status_code
                if status != 202:
                    failures.append(status)

        threads = [
            threading.Thread(target=post, args=(client, bodies[n :: len(clients)]))
            for n, client in enumerate(clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        stored = trio.run(_in_streams, redis.url)
    total = len(bodies) * REQUEST
    return {
        "nodes": nodes,
        "appendfsync": appendfsync,
        "seconds": round(seconds, 2),
        "interactionsPerSecond": round(total / seconds),
        "perIngestNode": round(total / seconds / nodes),
        "failedRequests": len(failures),
        "interactionsInStreams": stored,
    }


async def _in_streams(url: str) -> int:
    """Interactions the partition streams hold."""
    redis = coredis.Redis.from_url(url, decode_responses=False)
    total = 0
    async with redis:
        for number in range(PARTITIONS):
            for entry in await redis.xrange(layout.log(number)):
                total += len(decode_batch(as_bytes(entry.field_values[BATCH_FIELD])))
    return total


# -- processes --------------------------------------------------------------------------


def _redis(stack: ExitStack, base: Path, appendfsync: str) -> RedisServer:
    redis = RedisServer(base / "redis", appendfsync)
    stack.callback(redis.kill)
    return redis.start()


class _Node:
    """One node process (in a process group of its own, with its snapshot children)."""

    def __init__(self, url: str, role: str, log: Path) -> None:
        self.log = log
        env = {
            **os.environ,
            "ENGAUGE_REDIS": url,
            "ENGAUGE_PARTITIONS": str(PARTITIONS),
            "ENGAUGE_HOST": "127.0.0.1",
            "ENGAUGE_PORT": "0",
            "ENGAUGE_APIKEY": API_KEY,
            "ENGAUGE_PASSWORD": PASSWORD,
            "ENGAUGE_JWT": "benchmark-jwt-secret",
            "ENGAUGE_TIMEZONE": "UTC",
        }
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "engauge", "serve", "--role", role],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def url(self) -> str:
        """Where it listens, once it says so."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            found = re.search(r"Engauge listening on (\S+)", self.log.read_text(errors="replace"))
            if found:
                return found.group(1)
            time.sleep(0.02)
        raise RuntimeError(f"the node did not start; its output:\n{self.log.read_text()[-2000:]}")

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, size: int) -> str:
        with self.log.open("rb") as output:
            output.seek(size)
            return output.read().decode(errors="replace")

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)


@contextmanager
def _node(url: str, role: str, log: Path) -> Iterator[_Node]:
    node = _Node(url, role, log)
    try:
        yield node
    finally:
        node.kill()
