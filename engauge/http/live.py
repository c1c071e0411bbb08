"""``GET /dashboard/stream``: the current summaries, live, as server-sent events.

One broadcaster task notices a change within a tenth of a second, renders the changed
current summaries at most once a second and hands the same bytes to every subscriber; a
subscriber keeps only the newest, so a slow client never builds a backlog. Handlers only
forward, with a comment heartbeat every 15 s. At shutdown the broadcaster ends every
stream, so open streams do not hold up the exit.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import trio

HEARTBEAT_SECONDS = 15.0
INTERVAL_SECONDS = 1.0
CHECK_SECONDS = 0.1
HEARTBEAT = b": heartbeat\n\n"
MAX_STREAMS = 1000
"""Open streams at most; one more is refused (``503`` with ``Retry-After``). Each costs about
32 KB and a share of every publication; a dashboard tab holds one, so this is far more than
any team watching, and it keeps a client that opens streams in a loop from exhausting memory."""
RETRY_SECONDS = 30


class _Subscriber:
    def __init__(self) -> None:
        self.latest: bytes | None = None
        self.ready = trio.Event()


class StreamsFull(Exception):
    """:data:`MAX_STREAMS` streams are open."""


def summary_event(summaries: list[dict[str, Any]]) -> bytes:
    return b"event: summary\ndata: " + msgspec.json.encode(summaries) + b"\n\n"


class Broadcaster:
    """Publishes ``render()`` — the current summary of each interval, keyed by its id — to
    every subscriber when ``version()`` changed; only summaries that differ are sent."""

    def __init__(
        self, render: Callable[[], list[dict[str, Any]]], version: Callable[[], int]
    ) -> None:
        self.render = render
        self.version = version
        self.closed = False
        # Held weakly: a stream whose response never started (its client left first) ran no
        # ``finally``, and frees its place when its generator is dropped.
        self._subscribers: weakref.WeakSet[_Subscriber] = weakref.WeakSet()
        self._sent: dict[str, dict[str, Any]] = {}

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def run(self, shutdown: trio.Event) -> None:
        """Publish changes until ``shutdown``, then end every stream."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._publish_changes)
            await shutdown.wait()
            nursery.cancel_scope.cancel()
        self.close()

    async def _publish_changes(self) -> None:
        """A lone interaction is on screens within ``CHECK_SECONDS``; a busy stream is sent
        once a second, so every subscriber gets at most one event a second."""
        seen = -1
        while True:
            await trio.sleep(CHECK_SECONDS)
            if self._subscribers and self.version() != seen:
                seen = self.version()
                self._publish()
                await trio.sleep(INTERVAL_SECONDS - CHECK_SECONDS)

    def close(self) -> None:
        self.closed = True
        for subscriber in self._subscribers:
            subscriber.ready.set()

    def _publish(self) -> None:
        current = self.render()
        changed = [s for s in current if self._sent.get(s["id"]) != s]
        self._sent = {summary["id"]: summary for summary in current}
        if not changed:
            return
        event = summary_event(changed)
        for subscriber in self._subscribers:
            subscriber.latest = event
            subscriber.ready.set()

    def stream(self) -> AsyncIterator[bytes]:
        """One client's events: every current summary first, then the changes.

        Its place is taken now, so no burst of requests gets past :data:`MAX_STREAMS`;
        raises :class:`StreamsFull` when none is left.
        """
        if len(self._subscribers) >= MAX_STREAMS:
            raise StreamsFull
        subscriber = _Subscriber()
        self._subscribers.add(subscriber)
        return self._events(subscriber)

    async def _events(self, subscriber: _Subscriber) -> AsyncIterator[bytes]:
        try:
            yield summary_event(self.render())
            while not self.closed:
                with trio.move_on_after(HEARTBEAT_SECONDS) as waited:
                    await subscriber.ready.wait()
                if waited.cancelled_caught:
                    yield HEARTBEAT
                    continue
                subscriber.ready = trio.Event()
                if subscriber.latest is not None:
                    event, subscriber.latest = subscriber.latest, None
                    yield event
        finally:
            self._subscribers.discard(subscriber)
