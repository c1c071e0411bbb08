"""Hostile clients against the real server: each ends in a clean status or a closed
connection within its stated time, and the server's memory stays bounded.

Raw sockets stand in for clients an HTTP library would be too polite to be: bodies that
never come, headers a byte at a time, thousands of connections that say nothing. The
bounds come from the limits themselves (``KEEP_ALIVE_SECONDS``, ``BODY_SECONDS``,
``MAX_STREAMS``), with margins for a loaded CI machine; none is a performance figure.
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import EngaugeServer, wait_until

from engauge.http.ingest import BODY_SECONDS
from engauge.http.live import MAX_STREAMS, RETRY_SECONDS
from engauge.service import HEADER_BYTES, KEEP_ALIVE_SECONDS

MARGIN = 10.0
"""Seconds added to every "closed within" bound: room for a loaded 2-core machine."""
IDLE_CONNECTIONS = 10_000
IDLE_BYTES = 30 * 1024
"""Server memory allowed per idle connection: three times the 10 KB measured."""
STREAM_BYTES = 100 * 1024
"""Server memory allowed per open live stream: three times the 32 KB measured."""

DEEP = 10_000
DEEP_ARRAY = b"[" * DEEP + b"]" * DEEP
DEEP_OBJECT = b'{"a":' * DEEP + b"1" + b"}" * DEEP
VALID = b'{"action":"view","userID":"hostile"}'


# -- raw HTTP/1.1 -----------------------------------------------------------------------


class Reply:
    """What a raw connection received before the server closed it (or the wait ended)."""

    def __init__(self, data: bytes, closed: bool, seconds: float) -> None:
        self.data = data
        self.closed = closed
        self.seconds = seconds
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/1.1 ") else None
        self.headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:])
        )

    def json(self) -> Any:
        return json.loads(self.body)


def address(server: EngaugeServer) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname == "127.0.0.1" and parts.port is not None
    return parts.hostname, parts.port


def request_head(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_reply(sock: socket.socket, timeout: float, started: float | None = None) -> Reply:
    """Everything until the server closes the connection, or ``timeout`` seconds pass."""
    started = time.monotonic() if started is None else started
    data = b""
    closed = False
    while (left := started + timeout - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    return Reply(data, closed, time.monotonic() - started)


def exchange(server: EngaugeServer, data: bytes) -> Reply:
    """Send ``data`` on a fresh connection; the reply, read until the server closes it."""
    with socket.create_connection(address(server)) as sock:
        started = time.monotonic()
        sock.sendall(data)
        return read_reply(sock, MARGIN, started)


def assert_refused(reply: Reply, status: int, message: str = "") -> None:
    """A JSON error ``status`` whose message contains ``message``, connection closed."""
    assert reply.status == status, reply.data[:500]
    assert message in reply.json()["message"], reply.json()
    assert reply.closed, "the server kept the connection open"


def trickle(sock: socket.socket, data: bytes, every: float) -> threading.Thread:
    """Send ``data`` a byte every ``every`` seconds, until sent or the server closes."""

    def send() -> None:
        for byte in data:
            try:
                sock.send(bytes([byte]))
            except OSError:
                return
            time.sleep(every)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender


def resident_bytes(server: EngaugeServer) -> int:
    assert server.process is not None
    with open(f"/proc/{server.process.pid}/status") as status:
        kilobytes = next(line.split()[1] for line in status if line.startswith("VmRSS"))
    return int(kilobytes) * 1024


def healthy(server: EngaugeServer) -> None:
    response = server.request("GET", "/health")
    assert response.status_code == 200 and response.text == "alive"


class Route(NamedTuple):
    method: str
    path: str
    kind: str
    """Whose credentials it takes: ``ingest`` (the API key), ``dashboard`` (a token), ``none``."""


def credentials(server: EngaugeServer, kind: str) -> dict[str, str]:
    if kind == "ingest":
        return {"api-key": server.apikey}
    if kind == "dashboard":
        return {"authorization": f"Bearer {server.token}"}
    return {}


def call(server: EngaugeServer, route: Route, body: bytes) -> httpx.Response:
    return server.request(
        route.method, route.path, content=body, headers=credentials(server, route.kind)
    )


ROUTES = [
    Route("POST", "/api/interaction", "ingest"),
    Route("POST", "/api/interactions", "ingest"),
    Route("POST", "/v1/batch", "ingest"),
    Route("POST", "/batch/", "ingest"),
    Route("PUT", "/dashboard/settings", "dashboard"),
    Route("POST", "/login", "none"),
]
"""Every kind of route that reads a JSON body: ingest, Segment, PostHog, dashboard, login."""


# -- bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["arrays", "objects"])
@pytest.mark.parametrize("route", ROUTES)
def test_deep_nesting_is_a_400_on_every_json_route(
    server: EngaugeServer, body: bytes, route: Route
) -> None:
    response = call(server, route, body)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == "body: JSON nested too deeply"
    healthy(server)


def test_deep_nesting_where_posthog_looks_for_its_key_is_a_400(server: EngaugeServer) -> None:
    """Without a key header, the key is looked for in the body's object: a deep one is a
    400 too (a deep array holds no key at all: 401)."""
    response = call(server, Route("POST", "/capture/", "none"), DEEP_OBJECT)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == "body: JSON nested too deeply"


def test_deep_nesting_in_ndjson_rejects_its_line(server: EngaugeServer) -> None:
    ndjson = {"api-key": server.apikey, "content-type": "application/x-ndjson"}
    alone = server.request("POST", "/api/interactions", content=DEEP_ARRAY, headers=ndjson)
    assert alone.status_code == 400
    assert alone.json()["rejected"] == [{"index": 0, "message": "body: JSON nested too deeply"}]
    mixed = server.request(
        "POST", "/api/interactions", content=DEEP_OBJECT + b"\n" + VALID, headers=ndjson
    )
    assert mixed.status_code == 202
    assert mixed.json()["accepted"] == 1


def test_deep_nesting_inside_an_sdk_message_is_refused_by_name(server: EngaugeServer) -> None:
    """Arrays of objects are flattened only so deep; deeper ones are refused, not recursed."""
    nested = '{"p":[' * 400 + "{}" + "]}" * 400
    message = f'{{"type":"track","event":"e","userId":"u","properties":{nested}}}'
    response = server.request(
        "POST", "/v1/batch", content=f'{{"batch":[{message}]}}', headers={"api-key": server.apikey}
    )
    assert response.status_code == 400, response.text
    assert "properties.p" in response.json()["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("properties.price", b"1e400"),
        ("properties.price", b"-1e400"),
        ("properties.price", b"9" * 400),
        ("timestamp", b"1e400"),
        ("timestamp", b"-" + b"9" * 400),
    ],
)
def test_numbers_beyond_range_are_400s_naming_the_field(
    server: EngaugeServer, field: str, value: bytes
) -> None:
    if field == "timestamp":
        body = b'{"action":"view","userID":"u","timestamp":' + value + b"}"
    else:
        body = b'{"action":"view","userID":"u","properties":{"price":' + value + b"}}"
    response = server.post_api("/api/interaction", content=body)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field}: "), response.text


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
@pytest.mark.parametrize("route", ROUTES)
def test_nan_and_infinity_are_not_json(server: EngaugeServer, literal: bytes, route: Route) -> None:
    body = b'{"action":"view","userID":"u","username":"admin","price":' + literal + b"}"
    response = call(server, route, body)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("body: invalid JSON: JSON is malformed")


@pytest.mark.parametrize("route", ROUTES)
def test_invalid_utf8_in_a_body_is_a_400(server: EngaugeServer, route: Route) -> None:
    body = b'{"action":"view","userID":"\xff\xfe","username":"\xc3"}'
    response = call(server, route, body)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == "body: invalid JSON: Invalid UTF-8 encoded string"


class HeaderCase(NamedTuple):
    route: Route
    header: dict[str, str]
    status: int
    message: str


HEADER_CASES = [
    HeaderCase(Route("POST", "/api/interaction", "none"), {"api-key": "\xff\xfe"}, 401, "wrong"),
    HeaderCase(Route("POST", "/v1/batch", "none"), {"authorization": "Basic \xff"}, 401, "base64"),
    HeaderCase(Route("POST", "/api/interaction", "ingest"), {"content-type": "\xff"}, 415, "not"),
    HeaderCase(
        Route("GET", "/dashboard/summaries", "none"),
        {"authorization": "Bearer \xff"},
        401,
        "log in first",
    ),
    HeaderCase(
        Route("GET", "/dashboard/summaries", "none"), {"cookie": "token=\xff"}, 401, "log in first"
    ),
    HeaderCase(Route("POST", "/login", "none"), {"origin": "http://\xff"}, 403, "Origin"),
]
"""Header values are bytes to Engauge (read as Latin-1): bytes that are not UTF-8 are just
a value that does not match, answered like any other wrong value."""


@pytest.mark.parametrize("case", HEADER_CASES)
def test_invalid_utf8_in_header_values_is_a_wrong_value(
    server: EngaugeServer, case: HeaderCase
) -> None:
    sent = {**credentials(server, case.route.kind), **case.header, "content-length": "2"}
    head = request_head(case.route.method, case.route.path, {**sent, "connection": "close"})
    assert_refused(exchange(server, head + b"{}"), case.status, case.message)
    healthy(server)


def test_duplicate_keys_the_last_one_wins(server: EngaugeServer) -> None:
    body = b'{"action":"dup-first","action":"dup-last","userID":"dup"}'
    assert server.post_api("/api/interaction", content=body).status_code == 202
    server.settled_total()
    actions = {row["value"] for row in server.summary()["actionStats"]["values"]}
    assert "dup-last" in actions and "dup-first" not in actions


def test_keys_differing_only_in_case_are_given_twice(server: EngaugeServer) -> None:
    body = b'{"action":"a","Action":"b","userID":"u"}'
    response = server.post_api("/api/interaction", content=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("action: given twice")


# -- sizes ------------------------------------------------------------------------------

BODY_ROUTES = [
    (Route("POST", "/api/interaction", "ingest"), "larger than 64 KiB"),
    (Route("POST", "/api/interactions", "ingest"), "larger than 8192 KiB"),
    (Route("POST", "/v1/batch", "ingest"), "larger than 8192 KiB"),
    (Route("PUT", "/dashboard/settings", "dashboard"), "larger than 1024 KiB"),
    (Route("POST", "/login", "none"), "larger than 1024 KiB"),
]
"""The JSON routes with their body limits: 64 KiB, 8 MiB, 8 MiB, and 1 MiB on the others."""


@pytest.mark.parametrize(("route", "message"), BODY_ROUTES)
def test_a_declared_gigabyte_is_413_before_a_byte_is_read(
    server: EngaugeServer, route: Route, message: str
) -> None:
    sent = {**credentials(server, route.kind), "content-length": "1000000000"}
    reply = exchange(server, request_head(route.method, route.path, sent))  # and no body
    assert_refused(reply, 413, message)
    assert reply.seconds < MARGIN


def chunked(size: int) -> bytes:
    """A chunked body of ``size`` bytes in 32 KiB chunks, without its last chunk."""
    piece = 32 * 1024
    return (f"{piece:x}\r\n".encode() + b" " * piece + b"\r\n") * (size // piece)


@pytest.mark.parametrize(
    ("route", "size", "message"),
    [
        (Route("POST", "/api/interaction", "ingest"), 96 * 1024, "larger than 64 KiB"),
        (Route("POST", "/login", "none"), 1056 * 1024, "larger than 1024 KiB"),
    ],
)
def test_a_chunked_body_over_the_limit_is_413_and_closed(
    server: EngaugeServer, route: Route, size: int, message: str
) -> None:
    """Just over the limit, so the server has read all that was sent when it answers."""
    sent = {**credentials(server, route.kind), "transfer-encoding": "chunked"}
    reply = exchange(server, request_head(route.method, route.path, sent) + chunked(size))
    assert_refused(reply, 413, message)
    assert reply.seconds < MARGIN


# -- time -------------------------------------------------------------------------------


def stalled_body(server: EngaugeServer, route: Route) -> Reply:
    """Half a body, then silence."""
    sent = {**credentials(server, route.kind), "content-length": "100"}
    with socket.create_connection(address(server)) as sock:
        started = time.monotonic()
        sock.sendall(request_head(route.method, route.path, sent) + b'{"a')
        return read_reply(sock, BODY_SECONDS + MARGIN, started)


def trickled_body(server: EngaugeServer, route: Route) -> Reply:
    """A body a byte a second, for longer than the body may take."""
    length = int(BODY_SECONDS) * 2
    sent = {**credentials(server, route.kind), "content-length": str(length)}
    with socket.create_connection(address(server)) as sock:
        started = time.monotonic()
        sock.sendall(request_head(route.method, route.path, sent))
        sender = trickle(sock, b" " * length, every=1.0)
        reply = read_reply(sock, BODY_SECONDS + MARGIN, started)
    sender.join(MARGIN)
    return reply


def test_a_body_that_stalls_or_trickles_is_408_and_closed(server: EngaugeServer) -> None:
    """All at once, so the module waits out ``BODY_SECONDS`` once."""
    assert server.token  # logged in before the clock starts
    cases = [(read, route) for read in (stalled_body, trickled_body) for route in ROUTES]
    with ThreadPoolExecutor(len(cases)) as pool:
        replies = list(pool.map(lambda case: case[0](server, case[1]), cases))
    for (read, route), reply in zip(cases, replies, strict=True):
        assert reply.status == 408, (read.__name__, route.path, reply.data[:300])
        assert_refused(reply, 408, f"did not arrive within {BODY_SECONDS:.0f} s")
        assert BODY_SECONDS - 1 <= reply.seconds <= BODY_SECONDS + MARGIN, reply.seconds
    healthy(server)


def test_slowloris_headers_are_cut_off_at_the_keep_alive_timeout(server: EngaugeServer) -> None:
    """Headers a byte every half second never become a request; the idle timer that started
    when the connection opened closes it, without an answer."""
    with socket.create_connection(address(server)) as sock:
        started = time.monotonic()
        sender = trickle(sock, b"GET /health HTTP/1.1\r\nx-slow: " + b"a" * 1000, every=0.5)
        reply = read_reply(sock, KEEP_ALIVE_SECONDS + MARGIN, started)
    sender.join(MARGIN)
    assert reply.closed and reply.data == b""
    assert KEEP_ALIVE_SECONDS - 1 <= reply.seconds <= KEEP_ALIVE_SECONDS + MARGIN


@pytest.mark.parametrize("size", [HEADER_BYTES + 1024, 100 * 1024])
def test_oversized_headers_are_431_and_closed(server: EngaugeServer, size: int) -> None:
    """Headers past the limit with no end in sight: ``431`` as soon as they are seen."""
    head = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n" + b"x-big: " + b"a" * size + b"\r\n"
    reply = exchange(server, head)
    assert reply.status == 431, reply.data[:300]
    assert reply.closed and reply.seconds < MARGIN


# -- crowds -----------------------------------------------------------------------------


@contextmanager
def file_limit(needed: int) -> Iterator[None]:
    """This process may hold ``needed`` more sockets (the soft limit raised, if it must)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed + 1024
    if wanted > hard:
        pytest.skip(f"needs {wanted} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def wait_for_closes(sockets: list[socket.socket], deadline: float) -> int:
    """How many of ``sockets`` the server closed before ``deadline`` (each closed here too)."""
    closed = 0
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while closed < len(sockets) and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                with suppress(ConnectionResetError):
                    assert sock.recv(1024) == b""
                selector.unregister(sock)
                sock.close()
                closed += 1
    return closed


def test_ten_thousand_idle_connections_are_closed_and_cost_little(
    server: EngaugeServer,
) -> None:
    before = resident_bytes(server)
    sockets: list[socket.socket] = []
    with file_limit(IDLE_CONNECTIONS):
        try:
            for _ in range(IDLE_CONNECTIONS):
                sockets.append(socket.create_connection(address(server)))
            opened = time.monotonic()
            healthy(server)  # served meanwhile
            assert wait_until(lambda: resident_bytes(server) > before, 2.0)
            peak = resident_bytes(server)
            closed = wait_for_closes(sockets, opened + KEEP_ALIVE_SECONDS + MARGIN)
        finally:
            for sock in sockets:
                sock.close()
    assert closed == IDLE_CONNECTIONS
    assert peak - before < IDLE_CONNECTIONS * IDLE_BYTES
    healthy(server)


def stream_head(token: str) -> bytes:
    return request_head("GET", "/dashboard/stream", {"authorization": f"Bearer {token}"})


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """What ``sock`` received up to ``marker`` (and maybe a little after)."""
    data = b""
    deadline = time.monotonic() + MARGIN
    while marker not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        assert chunk, f"closed before {marker!r}: {data[:300]!r}"
        data += chunk
    return data


def first_event(sock: socket.socket) -> bytes:
    """The response head and the first event: everything up to its blank line."""
    data = read_until(sock, b"\n\n")
    assert data.startswith(b"HTTP/1.1 200") and b"event: summary" in data, data[:300]
    return data


def subscribers(server: EngaugeServer) -> float:
    for line in server.request("GET", "/metrics").text.splitlines():
        if line.startswith("engauge_sse_subscribers "):
            return float(line.split()[1])
    raise AssertionError("no engauge_sse_subscribers in /metrics")


def test_live_streams_are_capped_and_the_rest_keep_receiving(server: EngaugeServer) -> None:
    head = stream_head(server.token)
    before = resident_bytes(server)
    streams: list[socket.socket] = []
    with file_limit(MAX_STREAMS):
        try:
            for _ in range(MAX_STREAMS):
                streams.append(socket.create_connection(address(server)))
                streams[-1].sendall(head)
            for sock in streams:
                first_event(sock)
            grown = resident_bytes(server) - before
            refused = exchange(server, head.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n"))
            server.send({"action": "view", "userID": "while-full"})
            for sock in (streams[0], streams[-1]):
                read_until(sock, b"event: summary")  # published to every open stream
            assert subscribers(server) == MAX_STREAMS
        finally:
            for sock in streams:
                sock.close()
    assert_refused(refused, 503, f"{MAX_STREAMS} live streams are open")
    assert refused.headers["retry-after"] == str(RETRY_SECONDS)
    assert grown < MAX_STREAMS * STREAM_BYTES
    assert wait_until(lambda: subscribers(server) == 0, MARGIN)  # the ones that left are freed
    with socket.create_connection(address(server)) as again:
        again.sendall(head)
        first_event(again)
