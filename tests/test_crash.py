"""kill -9 under a concurrent batch load, several times: acknowledged <= recovered <= sent,
for the interaction count and for the summaries of every interval."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from conftest import APIKEY, EngaugeServer

INTERVALS = ("allTime", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly")
CLIENTS = 4
BATCH = 50
ROUNDS = 3


class Load:
    """Clients posting batches until stopped; counts what was sent and what was acknowledged."""

    def __init__(self, url: str, timestamp: str, batch: int = BATCH) -> None:
        self.url = url
        self.timestamp = timestamp
        self.batch = batch
        self.sent = 0
        self.acknowledged = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, client_number: int) -> None:
        headers = {"api-key": APIKEY}
        with httpx.Client(base_url=self.url, headers=headers, timeout=5) as client:
            number = 0
            while not self._stop.is_set():
                items = [
                    {
                        "action": "view",
                        "userID": f"c{client_number}-{number % 40}",
                        "originID": f"/{number % 5}",
                        "timestamp": self.timestamp,
                    }
                    for number in range(number, number + self.batch)
                ]
                number += self.batch
                with self._lock:
                    self.sent += self.batch
                try:
                    response = client.post("/api/interactions", json=items)
                except httpx.HTTPError:
                    continue  # the server died mid-request: sent, maybe journaled, not acknowledged
                if response.status_code == 202:
                    with self._lock:
                        self.acknowledged += response.json()["accepted"]


def totals(server: EngaugeServer, at: str) -> dict[str, int]:
    return {interval: server.summary(interval, at=at)["total"] for interval in INTERVALS}


@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_kill_9_under_load_never_loses_an_acknowledged_interaction(
    start_server: Callable[..., EngaugeServer], fsync: str
) -> None:
    server = start_server(env={"ENGAUGE_FSYNC": fsync, "ENGAUGE_SNAPSHOTEVERY": "1"})
    timestamp = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    rng = random.Random(fsync)
    acknowledged = sent = 0
    for _ in range(ROUNDS):
        with Load(server.url, timestamp) as load:
            time.sleep(rng.uniform(0.4, 1.5))
            server.kill()
        acknowledged += load.acknowledged
        sent += load.sent
        server.start()
        recovered = totals(server, timestamp)
        assert load.acknowledged > 0
        for interval, total in recovered.items():
            assert acknowledged <= total <= sent, (interval, acknowledged, total, sent)
        assert "recovered" in server.stderr()


def test_under_load_every_acknowledged_interaction_is_counted_and_survives_sigterm(
    start_server: Callable[..., EngaugeServer],
) -> None:
    """Large groups applied across the once-a-second tick: the live total equals what was
    acknowledged. Then a SIGTERM while clients are still sending: nothing acknowledged is
    lost (a request cut off by the stop may count without its answer arriving), and the
    restart replays nothing."""
    server = start_server(env={"ENGAUGE_SNAPSHOTEVERY": "1"})
    timestamp = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    with Load(server.url, timestamp, batch=500) as load:
        time.sleep(2.5)
    assert server.settled_total() == load.acknowledged
    with Load(server.url, timestamp, batch=500) as second:
        time.sleep(1.0)
        assert server.stop() == 0
    acknowledged = load.acknowledged + second.acknowledged
    sent = load.sent + second.sent
    server.start()
    assert "and 0 from the journal" in server.stderr()
    for interval, total in totals(server, timestamp).items():
        assert acknowledged <= total <= sent, (interval, acknowledged, total, sent)
