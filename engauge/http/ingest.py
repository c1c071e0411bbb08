"""The ingest routes as a bare ASGI application: ``POST /api/interaction`` and
``/api/interactions``, and the Segment- and PostHog-compatible routes (:mod:`engauge.http.sdk`).

Ingestion is the hot path, so it runs in front of the Quart app without its routing and
request objects. Its only job: authenticate, read a bounded body, decode and validate,
hand the accepted interactions to the pipeline and answer once they are journaled.

Two keys open it: the private API key, and the public key that web pages carry, which is
accepted only from the origins in ``ENGAUGE_CORS`` and rate-limited per client address.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import tzinfo
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qs

import msgspec
import trio
from attrs import define
from msgspec import Meta

from engauge.http.auth import RateLimit, digest
from engauge.http.errors import ApiError, Refused
from engauge.http.jsonio import decode_json
from engauge.http.openapi import INGEST_AUTH, JSON, Operation
from engauge.http.sdk import (
    NO_FLAGS,
    POSTHOG_FLAG_PATHS,
    POSTHOG_PATHS,
    SEGMENT_PATHS,
    SEGMENT_SINGLE,
    body_key,
    posthog_messages,
    segment_messages,
)
from engauge.http.shapes import (
    Accepted,
    InteractionIn,
    PostHogAnswer,
    PostHogCapture,
    PostHogFlags,
    SegmentAnswer,
    SegmentBatch,
    SegmentSingle,
)
from engauge.metrics import ACCEPTED, REJECTED, STATUS_REASONS
from engauge.pipeline import NotDurable, Overloaded
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
NDJSON = "application/x-ndjson"
NDJSON_TYPES = (NDJSON.encode(), b"application/ndjson")
BODY_SECONDS = 30.0
"""How long a request's whole body may take to arrive once the application reads it: 8 MiB
at 280 KB/s. A body that stalls or trickles is answered ``408`` and its connection closed,
so a client holds a connection no longer than this (the Quart routes use the same limit)."""
PUBLIC_PER_SECOND = 20.0
PUBLIC_BURST = 100
"""What one client address may send with the public key: 100 requests at once, 20 a second."""
PUBLIC_ITEMS = 50
"""Interactions in one public-key request: a page sends a few; this bounds what one can."""


@define(frozen=True)
class Dialect:
    """How an SDK's routes carry messages, and the answer its clients expect."""

    messages: Callable[[object, str, float, tzinfo], list[object]]
    answer: dict[str, Any]


SEGMENT = Dialect(segment_messages, {"success": True})
POSTHOG = Dialect(posthog_messages, {"status": 1})
SDK_ROUTES: dict[str, Dialect] = {
    **dict.fromkeys(SEGMENT_PATHS, SEGMENT),
    **dict.fromkeys(POSTHOG_PATHS, POSTHOG),
}
FLAG_METHODS = ("GET", "HEAD", "POST")
INGEST_PATHS = frozenset({SINGLE, BATCH, *SDK_ROUTES, *POSTHOG_FLAG_PATHS})


INGEST_ERRORS = (400, 401, 403, 405, 408, 413, 415, 429, 503)
OPERATIONS: dict[str, Operation] = {
    SINGLE: Operation(
        "Send one interaction",
        "ingest",
        {202: Accepted},
        errors=INGEST_ERRORS,
        body={JSON: InteractionIn},
        security=INGEST_AUTH,
        description="The `202` comes once the interaction is journaled. Browsers may send "
        "the same JSON as `text/plain` (no CORS preflight).",
    ),
    BATCH: Operation(
        "Send a batch of interactions",
        "ingest",
        {202: Accepted},
        errors=INGEST_ERRORS,
        body={JSON: Annotated[list[InteractionIn], Meta(max_length=BATCH_ITEMS)], NDJSON: str},
        security=INGEST_AUTH,
        description=f"Up to {BATCH_ITEMS:,} interactions and {BATCH_LIMIT // 2**20} MiB, as a "
        "JSON array or NDJSON, gzip allowed. Invalid items are listed in `rejected` by "
        "index; the others are accepted.",
    ),
    **{
        path: Operation(
            f"Segment {path.rsplit('/', 1)[-1]}",
            "sdk",
            {200: SegmentAnswer},
            errors=INGEST_ERRORS,
            body={JSON: SegmentSingle if path in SEGMENT_SINGLE else SegmentBatch},
            security=("basicKey", "apiKey"),
            description="Segment-compatible: point a Segment SDK's host at Engauge.",
        )
        for path in sorted(SEGMENT_PATHS)
    },
    **{
        path: Operation(
            f"PostHog capture {path}",
            "sdk",
            {200: PostHogAnswer},
            errors=INGEST_ERRORS,
            body={JSON: PostHogCapture},
            security=("apiKey",),
            description="PostHog-compatible: the key may also be the body's `api_key` "
            "(or `token`). A trailing `/` is accepted.",
        )
        for path in sorted(POSTHOG_PATHS)
    },
}
"""What the API reference says of each ingest route (the Quart routes carry theirs)."""


def ingest_routes() -> list[tuple[str, str, Operation]]:
    """(path, method, operation) of every ingest route, for the API reference."""
    flags = Operation("PostHog feature flags: none", "sdk", {200: PostHogFlags}, security=())
    routes = [(path, "post", operation) for path, operation in OPERATIONS.items()]
    routes += [(path, method, flags) for path in POSTHOG_FLAG_PATHS for method in ("get", "post")]
    return routes


def is_ingest(path: str) -> bool:
    """Whether ``path`` belongs to the ingest application rather than the Quart app."""
    return path.startswith("/api/") or (path.rstrip("/") or "/") in INGEST_PATHS


_encode = msgspec.json.encode


class Sink(Protocol):
    """Where accepted interactions go: the journal (:class:`~engauge.pipeline.Pipeline`),
    or in a cluster the partition streams (:class:`~engauge.cluster.log.PartitionedLog`)."""

    def check_capacity(self) -> None:
        """Raise :class:`Overloaded` when no more can be taken now."""

    async def submit(self, batch: Sequence[Interaction]) -> None:
        """Return once ``batch`` is durable; raise :class:`NotDurable` if it could not be."""


class IngestApp:
    """The ingest routes; ``cors`` is ``("*",)`` or the origins allowed to send from browsers."""

    def __init__(
        self,
        pipeline: Sink,
        api_key: str,
        public_key: str,
        cors: tuple[str, ...],
        zone: tzinfo,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pipeline = pipeline
        self.api_key = digest(api_key)
        self.public_key = digest(public_key)
        self.cors = cors
        self.zone = zone
        self.clock = clock
        self.public_limit = RateLimit(PUBLIC_PER_SECOND, PUBLIC_BURST)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        cors = self._cors_headers(headers.get(b"origin"))
        try:
            status, body = await self._handle(scope, headers, receive)
        except ApiError as error:
            status, body, cors = error.status, error.body(), cors + error.headers
            REJECTED.labels(STATUS_REASONS.get(status, "bad_request")).inc()
        except Exception:
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            status, body = 500, {"message": "internal error; see the server log"}
        await respond(send, status, body, cors)

    async def _handle(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive
    ) -> tuple[int, Any]:
        path = scope["path"].rstrip("/") or "/"
        if path not in INGEST_PATHS:
            raise ApiError(
                404, f"no route {scope['path']}; send interactions to {SINGLE} or {BATCH}"
            )
        if scope["method"] == "OPTIONS":
            return 204, None
        if path in POSTHOG_FLAG_PATHS and scope["method"] in FLAG_METHODS:
            return 200, NO_FLAGS  # so PostHog's SDKs find no feature flags and log no error
        if path in POSTHOG_FLAG_PATHS:
            raise ApiError(405, "use GET or POST", [(b"allow", b"GET, POST, OPTIONS")])
        if scope["method"] != "POST":
            raise ApiError(405, "use POST", [(b"allow", b"POST, OPTIONS")])
        dialect = SDK_ROUTES.get(path)
        if dialect is not None:
            return await self._handle_sdk(scope, path, dialect, headers, receive)
        from_header = _header_key(headers)
        public = self._authorize(
            from_header or _query_key(scope), headers, scope, in_url=from_header is None
        )
        batch = path == BATCH
        content_type = _content_type(headers)
        limit = BATCH_LIMIT if batch and not public else SINGLE_LIMIT
        body = await _read_body(receive, headers, limit)
        now = self.clock()
        if not batch:
            if content_type in NDJSON_TYPES:
                raise ApiError(415, f"send one JSON object to {SINGLE}; NDJSON goes to {BATCH}")
            accepted, rejected = self._validate_batch([_decode_json(body)], now)
            if rejected:
                raise ApiError(400, rejected[0]["message"])
            await self._submit(accepted, path)
            return 202, {"accepted": 1}
        items = split_ndjson(body) if content_type in NDJSON_TYPES else _json_array(body)
        if public:
            _check_public_count(len(items))
        accepted, rejected = self._validate_batch(items, now)
        if not accepted:
            raise ApiError(400, _batch_failure(rejected), details={"rejected": rejected})
        await self._submit(accepted, path)
        answer: dict[str, Any] = {"accepted": len(accepted)}
        if rejected:
            answer["rejected"] = rejected
        return 202, answer

    async def _handle_sdk(
        self,
        scope: Scope,
        path: str,
        dialect: Dialect,
        headers: dict[bytes, bytes],
        receive: Receive,
    ) -> tuple[int, Any]:
        """A Segment or PostHog request. A key in a header is checked before the body is
        read; a key in the body is found without building the body's objects."""
        _content_type(headers)
        key = _header_key(headers)
        public = None if key is None else self._authorize(key, headers, scope)
        limit = SINGLE_LIMIT if path in SEGMENT_SINGLE or public else BATCH_LIMIT
        raw = await _read_body(receive, headers, limit)
        if public is None:
            found = body_key(raw)
            public = self._authorize(None if found is None else found.encode(), headers, scope)
            if public and len(raw) > SINGLE_LIMIT:
                kib = SINGLE_LIMIT // 1024
                raise ApiError(413, f"a public-key request holds at most {kib} KiB")
        now = self.clock()
        items = dialect.messages(_decode_json(raw), path, now, self.zone)
        _check_count(len(items))
        if public:
            _check_public_count(len(items))
        accepted, rejected = self._validate_batch(items, now)
        if rejected:
            # The SDKs do not read the answer's body: say here what was refused.
            log.warning(
                "%s: %d of %d messages refused; the first, item %d: %s",
                path,
                len(rejected),
                len(items),
                rejected[0]["index"],
                rejected[0]["message"],
            )
        if not accepted:
            raise ApiError(400, _batch_failure(rejected), details={"rejected": rejected})
        await self._submit(accepted, path)
        extra = {"rejected": rejected} if rejected else {}
        return 200, {**dialect.answer, "accepted": len(accepted), **extra}

    def _authorize(
        self,
        key: bytes | None,
        headers: dict[bytes, bytes],
        scope: Scope,
        *,
        in_url: bool = False,
    ) -> bool:
        """Whether the public key was used. The private key opens every ingest route (but
        never in a URL, where logs keep it); the public key only from an allowed ``Origin``
        and within its rate limit."""
        if key is None:
            raise ApiError(
                401, "api-key header is missing; send the key from the server's start-up"
            )
        hashed = digest(key)
        if hmac.compare_digest(hashed, self.api_key):
            if in_url:
                raise ApiError(
                    401, "the API key must not travel in a URL; send it in the api-key header"
                )
            return False
        if not hmac.compare_digest(hashed, self.public_key):
            raise ApiError(401, "api-key is wrong")
        origin = headers.get(b"origin", b"").decode("latin-1")
        if self.cors == ("*",):
            raise ApiError(
                403,
                "the public key is taken only from the sites listed in ENGAUGE_CORS, "
                "which is *; list the origins of your pages there",
            )
        if origin not in self.cors:
            raise ApiError(
                403,
                f"Origin {origin or '(none)'} is not in ENGAUGE_CORS; the public key is "
                "taken only from pages on those origins",
            )
        address = (scope.get("client") or ("unknown",))[0]
        wait = self.public_limit.retry_after(address)
        if wait > 0:
            raise ApiError(
                429,
                "too many requests with the public key from this address; slow down",
                [(b"retry-after", str(max(1, round(wait))).encode())],
            )
        return True

    def _validate_batch(
        self, items: list[object], now: float
    ) -> tuple[list[Interaction], list[dict[str, Any]]]:
        accepted: list[Interaction] = []
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            if isinstance(item, Refused):
                rejected.append({"index": index, "message": item.message})
                continue
            try:
                accepted.append(validate_interaction(item, now=now, zone=self.zone))
            except InvalidInteraction as error:
                rejected.append({"index": index, "message": str(error)})
        if rejected:
            REJECTED.labels("invalid").inc(len(rejected))
        return accepted, rejected

    async def _submit(self, interactions: list[Interaction], path: str) -> None:
        try:
            self.pipeline.check_capacity()
            await self.pipeline.submit(interactions)
            ACCEPTED.labels(path).inc(len(interactions))
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
        vary = [(b"vary", b"Origin")]  # the answer depends on it, for caches too
        if origin is None:
            return vary
        if self.cors != ("*",) and origin.decode("latin-1") not in self.cors:
            return vary
        return [
            (b"access-control-allow-origin", b"*" if self.cors == ("*",) else origin),
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (
                b"access-control-allow-headers",
                b"api-key, authorization, content-type, content-encoding",
            ),
            (b"access-control-max-age", b"86400"),
            *vary,
        ]


def _header_key(headers: dict[bytes, bytes]) -> bytes | None:
    """The key from ``api-key``, ``Authorization: Bearer``, or HTTP Basic's user name (as
    Segment's SDKs send their write key)."""
    key = headers.get(b"api-key")
    if key is not None:
        return key
    scheme, _, credentials = headers.get(b"authorization", b"").strip().partition(b" ")
    credentials = credentials.strip()
    if scheme.lower() == b"bearer":
        return credentials or None
    if scheme.lower() == b"basic":
        try:
            user = base64.b64decode(credentials, validate=True).split(b":", 1)[0]
        except (binascii.Error, ValueError):
            raise ApiError(401, "Authorization: Basic must be base64 of key:") from None
        return user or None
    return None


def _query_key(scope: Scope) -> bytes | None:
    """``?key=``: how a page's ``sendBeacon`` sends the public key (it cannot set headers)."""
    found = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("key")
    return found[0].encode() if found else None


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
    """The body, refused before a byte is read when its declared length is too large, and
    given :data:`BODY_SECONDS` to arrive."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    with trio.move_on_after(BODY_SECONDS):
        body = await _receive_body(receive, limit)
        if headers.get(b"content-encoding", b"").strip().lower() == b"gzip":
            return _gunzip(body, limit)
        return body
    raise body_too_slow()


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, f"the body is larger than {limit // 1024} KiB; split it up")


def body_too_slow() -> ApiError:
    return ApiError(408, f"the body did not arrive within {BODY_SECONDS:.0f} s; send it faster")


async def _receive_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body, unpacked no further than ``limit`` bytes (no zip bombs)."""
    unpacker = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        unpacked = unpacker.decompress(body, limit + 1)
    except zlib.error:
        raise ApiError(400, "body: Content-Encoding is gzip but the body is not gzip") from None
    if len(unpacked) > limit or unpacker.unconsumed_tail:
        raise body_too_large(limit)
    if not unpacker.eof or unpacker.unused_data:
        raise ApiError(400, "body: the gzip data is cut short or followed by other bytes")
    return unpacked


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


def split_ndjson(body: bytes) -> list[object]:
    """The items of an NDJSON batch: a line that is not JSON becomes a :class:`Refused`
    item, so it is rejected by its index while the other lines are still taken."""
    items: list[object] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            items.append(decode_json(line))
        except ApiError as error:
            items.append(Refused(str(error)))
    _check_count(len(items))
    return items


def _check_public_count(count: int) -> None:
    if count > PUBLIC_ITEMS:
        raise ApiError(
            413, f"body: {count} items; a public-key request holds at most {PUBLIC_ITEMS}"
        )


def _check_count(count: int) -> None:
    if count == 0:
        raise ApiError(400, "body: the batch is empty")
    if count > BATCH_ITEMS:
        raise ApiError(413, f"body: {count} items; a batch holds at most {BATCH_ITEMS}")


def _batch_failure(rejected: list[dict[str, Any]]) -> str:
    first = rejected[0]
    return f"no interaction was valid; item {first['index']}: {first['message']}"


async def respond(send: Send, status: int, body: Any, extra: list[tuple[bytes, bytes]]) -> None:
    """A JSON answer from raw ASGI."""
    payload = b"" if body is None else _encode(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": payload})
