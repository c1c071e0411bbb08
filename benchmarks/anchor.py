"""The anchor for the single-interaction scenario: a bare ASGI app on hypercorn's trio worker
that reads the body and answers ``202``. Engauge's ingest is measured against it in the same
run, so the ratio says what validation, the journal and the aggregator cost on top of the
server itself.

Run as ``python -m benchmarks.anchor PORT``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import hypercorn.config
import hypercorn.trio
import trio

Message = MutableMapping[str, Any]
ANSWER = b'{"accepted":1}'


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"14")]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


def main(port: int) -> None:
    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    trio.run(hypercorn.trio.serve, app, config)


if __name__ == "__main__":
    main(int(sys.argv[1]))
