"""``POST /api/interaction`` and ``POST /api/interactions`` as a bare ASGI application.

Ingestion is the hot path, so it runs in front of the Quart app without its routing and
request objects. Its only job: authenticate, read a bounded body, decode and validate,
hand the accepted interactions to the pipeline and answer once they are journaled.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import tzinfo
from typing import Any

import msgspec

from engauge.http.auth import digest
from engauge.http.errors import ApiError
from engauge.http.jsonio import decode_json
from engauge.pipeline import NotDurable, Overloaded, Pipeline
from engauge.stream.interaction import Interaction
from engauge.stream.validation import InvalidInteraction, validate_interaction

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

log = logging.getLogger("engauge.ingest")

SINGLE = "/api/interaction"
BATCH = "/api/interactions"
SINGLE_LIMIT = 64 * 1024
BATCH_LIMIT = 8 * 1024 * 1024
BATCH_ITEMS = 10_000
JSON_TYPES = (b"application/json", b"text/plain")
NDJSON_TYPES = (b"application/x-ndjson", b"application/ndjson")

_encode = msgspec.json.encode


class IngestApp:
    """The ingest routes; ``cors`` is ``("*",)`` or the origins allowed to send from browsers."""

    def __init__(
        self,
        pipeline: Pipeline,
        api_key: str,
        cors: tuple[str, ...],
        zone: tzinfo,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pipeline = pipeline
        self.api_key = digest(api_key)
        self.cors = cors
        self.zone = zone
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        cors = self._cors_headers(headers.get(b"origin"))
        try:
            status, body = await self._handle(scope, headers, receive)
        except ApiError as error:
            status, body, cors = error.status, error.body(), cors + error.headers
        except Exception:
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            status, body = 500, {"message": "internal error; see the server log"}
        await _respond(send, status, body, cors)

    async def _handle(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive
    ) -> tuple[int, Any]:
        path = scope["path"].rstrip("/")
        if path not in (SINGLE, BATCH):
            raise ApiError(
                404, f"no route {scope['path']}; send interactions to {SINGLE} or {BATCH}"
            )
        if scope["method"] == "OPTIONS":
            return 204, None
        if scope["method"] != "POST":
            raise ApiError(405, "use POST", [(b"allow", b"POST, OPTIONS")])
        self._authenticate(headers)
        batch = path == BATCH
        content_type = _content_type(headers)
        body = await _read_body(receive, headers, BATCH_LIMIT if batch else SINGLE_LIMIT)
        now = self.clock()
        if not batch:
            if content_type in NDJSON_TYPES:
                raise ApiError(415, f"send one JSON object to {SINGLE}; NDJSON goes to {BATCH}")
            accepted, rejected = self._validate_batch([_decode_json(body)], now)
            if rejected:
                raise ApiError(400, rejected[0]["message"])
            await self._submit(accepted)
            return 202, {"accepted": 1}
        items = _split_ndjson(body) if content_type in NDJSON_TYPES else _json_array(body)
        accepted, rejected = self._validate_batch(items, now)
        if not accepted:
            raise ApiError(400, _batch_failure(rejected), details={"rejected": rejected})
        await self._submit(accepted)
        answer: dict[str, Any] = {"accepted": len(accepted)}
        if rejected:
            answer["rejected"] = rejected
        return 202, answer

    def _authenticate(self, headers: dict[bytes, bytes]) -> None:
        key = headers.get(b"api-key")
        if key is None:
            authorization = headers.get(b"authorization", b"")
            if authorization[:7].lower() == b"bearer ":
                key = authorization[7:].strip()
        if key is None:
            raise ApiError(
                401, "api-key header is missing; send the key from the server's start-up"
            )
        if not hmac.compare_digest(digest(key), self.api_key):
            raise ApiError(401, "api-key is wrong")

    def _validate_batch(
        self, items: list[object], now: float
    ) -> tuple[list[Interaction], list[dict[str, Any]]]:
        accepted: list[Interaction] = []
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            if isinstance(item, _Malformed):
                rejected.append({"index": index, "message": item.message})
                continue
            try:
                accepted.append(validate_interaction(item, now=now, zone=self.zone))
            except InvalidInteraction as error:
                rejected.append({"index": index, "message": str(error)})
        return accepted, rejected

    async def _submit(self, interactions: list[Interaction]) -> None:
        try:
            self.pipeline.check_capacity()
            await self.pipeline.submit(interactions)
        except Overloaded:
            raise ApiError(
                503, "the aggregator is behind; retry after a second", [(b"retry-after", b"1")]
            ) from None
        except NotDurable:
            raise ApiError(
                503,
                "the journal cannot be written (is the disk full?); nothing was accepted",
                [(b"retry-after", b"5")],
            ) from None

    def _cors_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        if origin is None:
            return []
        if self.cors != ("*",) and origin.decode("latin-1") not in self.cors:
            return []
        return [
            (b"access-control-allow-origin", b"*" if self.cors == ("*",) else origin),
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (b"access-control-allow-headers", b"api-key, authorization, content-type"),
            (b"access-control-max-age", b"86400"),
            (b"vary", b"Origin"),
        ]


class _Malformed:
    """An NDJSON line that is not JSON: rejected by index like any invalid item."""

    def __init__(self, message: str) -> None:
        self.message = message


def _content_type(headers: dict[bytes, bytes]) -> bytes:
    value = headers.get(b"content-type", b"application/json")
    media = value.split(b";", 1)[0].strip().lower()
    if media not in JSON_TYPES + NDJSON_TYPES:
        raise ApiError(
            415,
            f"Content-Type {media.decode('latin-1')!r} is not accepted; "
            "send application/json (or application/x-ndjson for a batch)",
        )
    return media


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    too_large = ApiError(413, f"the body is larger than {limit // 1024} KiB; split it up")
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _decode_json(body: bytes) -> object:
    if not body.strip():
        raise ApiError(400, "body: is empty; send a JSON object")
    return decode_json(body)


def _json_array(body: bytes) -> list[object]:
    items = _decode_json(body)
    if not isinstance(items, list):
        raise ApiError(400, "body: must be a JSON array of interactions (or NDJSON)")
    _check_count(len(items))
    return items


def _split_ndjson(body: bytes) -> list[object]:
    items: list[object] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            items.append(decode_json(line))
        except ApiError as error:
            items.append(_Malformed(str(error)))
    _check_count(len(items))
    return items


def _check_count(count: int) -> None:
    if count == 0:
        raise ApiError(400, "body: the batch is empty")
    if count > BATCH_ITEMS:
        raise ApiError(413, f"body: {count} items; a batch holds at most {BATCH_ITEMS}")


def _batch_failure(rejected: list[dict[str, Any]]) -> str:
    first = rejected[0]
    return f"no interaction was valid; item {first['index']}: {first['message']}"


async def _respond(send: Send, status: int, body: Any, extra: list[tuple[bytes, bytes]]) -> None:
    payload = b"" if body is None else _encode(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": payload})
