"""The HTTP application: ingest fast path in front of the Quart app (login, health, dashboard).

:class:`Application` is the one ASGI callable: ``/api/*`` and the SDK-compatible ingest
routes go straight to :class:`~engauge.http.ingest.IngestApp`; everything else, lifespan
included, to Quart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio
from attrs import define
from quart import Quart, Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, RequestTimeout

from engauge.http.auth import Accounts
from engauge.http.dashboard import DashboardApi
from engauge.http.errors import ApiError
from engauge.http.ingest import (
    BODY_SECONDS,
    IngestApp,
    Receive,
    Scope,
    Send,
    body_too_large,
    body_too_slow,
    ingest_routes,
    is_ingest,
    respond,
)
from engauge.http.jsonio import json_response
from engauge.http.login import check_origin, login_routes, require_login
from engauge.http.openapi import Operation, add_reference, documented
from engauge.http.operations import add_operations
from engauge.http.pages import STATIC, STATIC_FILES, add_pages
from engauge.metrics import REQUEST_SECONDS

log = logging.getLogger("engauge.http")

DASHBOARD_BODY_LIMIT = 1024 * 1024


HEALTH_PATHS = ("/health", "/health/ready")
RECOVERING = {"message": "Engauge is recovering its data; retry in a few seconds"}


@define(frozen=True)
class Serves:
    """What a process answers besides health and metrics: all of it, or, as one node of a
    cluster, its ``role``'s part."""

    role: str = "all"
    ingest: bool = True
    dashboard: bool = True


EVERYTHING = Serves()
OPERATIONS_PATHS = (*HEALTH_PATHS, "/metrics")


class Application:
    """Routes the ingest paths to the ingest fast path and the rest to Quart.

    Until ``started`` (recovery is running), only the health routes answer; every other
    request gets ``503`` with ``Retry-After``, so nothing reads a half-built state. A
    cluster node answers ``404`` for what its role does not serve, naming the role to ask.
    """

    def __init__(self, ingest: IngestApp | None, web: Quart, serves: Serves) -> None:
        self.ingest = ingest
        self.web = web
        self.serves = serves
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.web(scope, receive, send)  # type: ignore[arg-type]
            return
        path = scope["path"]
        started = time.perf_counter()
        try:
            if not self.started and path not in HEALTH_PATHS:
                await respond(send, 503, RECOVERING, [(b"retry-after", b"5")])
            elif path in OPERATIONS_PATHS:
                await self.web(scope, receive, _shielded(send))  # type: ignore[arg-type]
            elif is_ingest(path):
                await self._ingest(scope, receive, send)
            elif self.serves.dashboard:
                await self.web(scope, receive, _shielded(send))  # type: ignore[arg-type]
            else:
                await self._elsewhere(send, "the dashboard", "dashboard")
        finally:
            REQUEST_SECONDS.labels(route_label(path)).observe(time.perf_counter() - started)

    async def _ingest(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.ingest is None:
            await self._elsewhere(send, "interactions", "ingest")
        else:
            await self.ingest(scope, receive, send)

    async def _elsewhere(self, send: Send, what: str, role: str) -> None:
        message = (
            f"this node (--role {self.serves.role}) does not serve {what}; "
            f"use a node with --role {role} or all"
        )
        await respond(send, 404, {"message": message}, [])


ROUTES = (
    "/dashboard/summaries",
    "/dashboard/series",
    "/dashboard/stream",
    "/dashboard/settings",
    "/dashboard/export",
    "/dashboard/properties",
    "/dashboard/endpoint",
    "/dashboard/origin",
    "/dashboard/entity",
    "/static",
    "/health/ready",
    "/health",
    "/metrics",
    "/login",
    "/logout",
    "/refresh-token",
    "/engauge.js",
)


def route_label(path: str) -> str:
    """The route a path belongs to: a small fixed set, so the metrics stay small whatever
    paths clients send."""
    if path.startswith("/api/"):
        return _api_label(path)
    if is_ingest(path):
        return path.rstrip("/")
    if path == "/":
        return path
    for route in ROUTES:
        if path == route or path.startswith(route + "/"):
            return route
    return "other"


def _api_label(path: str) -> str:
    trimmed = path.rstrip("/")
    return trimmed if trimmed in ("/api/interaction", "/api/interactions") else "/api/other"


def _shielded(send: Send) -> Send:
    """``send`` that Quart cannot cancel halfway.

    Hypercorn marks a kept-alive connection idle inside the response's final ``send``, and
    quart-trio cancels its request tasks as soon as that ``send`` delivers ``http.disconnect``.
    Cancelled there, the connection is never marked idle again: neither the keep-alive timeout
    nor a graceful stop would close it (a stop waited its full grace period for every browser
    tab). Hypercorn shields the socket write itself, so the shield adds no new way to block.
    """

    async def shielded_send(message: MutableMapping[str, Any]) -> None:
        with trio.CancelScope(shield=True):
            await send(message)

    return shielded_send


def create_web_app(
    accounts: Accounts,
    dashboard: DashboardApi,
    https: bool,
    *,
    metrics_token: str | None,
    unready: Callable[[], str | None],
    health: Callable[[], Awaitable[dict[str, Any]]] | None,
) -> Quart:
    """Quart app with health, metrics, login, the dashboard page and the dashboard API
    behind the login."""
    web = QuartTrio("engauge", static_folder=str(STATIC), static_url_path="/static")
    web.url_map.merge_slashes = False  # a property named "/a//b" is not another address
    web.config["MAX_CONTENT_LENGTH"] = DASHBOARD_BODY_LIMIT
    web.config["BODY_TIMEOUT"] = BODY_SECONDS

    @web.before_request
    async def read_body() -> None:
        # Read the whole body before any check can refuse the request: a body left unread
        # would stall the next request on a kept-alive connection.
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            try:
                await request.get_data()
            except RequestEntityTooLarge:
                raise body_too_large(DASHBOARD_BODY_LIMIT) from None
            except RequestTimeout:
                raise body_too_slow() from None

    @web.get("/health")
    @documented(
        Operation(
            "Liveness: `alive` while the process runs (a cluster node answers JSON with its "
            "role and, for an aggregate node, each partition's lag)",
            "operations",
            {200: None},
            content=("text/plain",),
            security=(),
        )
    )
    async def health_route() -> Response:
        if health is None:
            return Response("alive", content_type="text/plain")
        return json_response(await health())

    add_pages(web)
    add_operations(web, metrics_token, unready)
    web.register_blueprint(login_routes(accounts, https))
    routes = dashboard.blueprint()

    @routes.before_request
    async def guard() -> None:
        require_login(accounts)
        check_origin()

    web.register_blueprint(routes)
    add_reference(web, ingest_routes(), STATIC_FILES)
    _json_errors(web)
    return web


def _json_errors(web: Quart) -> None:
    """Every error, whatever raised it, answers ``{"message": ...}``."""

    @web.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        headers = {name.decode(): value.decode() for name, value in error.headers}
        return json_response(error.body(), error.status, headers)

    @web.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
        return json_response(
            {"message": error.description or error.name}, error.code or 500, headers
        )

    @web.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return json_response({"message": "internal error; see the server log"}, 500)


def create_app(
    ingest: IngestApp | None,
    accounts: Accounts,
    dashboard: DashboardApi,
    https: bool,
    *,
    metrics_token: str | None,
    unready: Callable[[], str | None],
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    serves: Serves = EVERYTHING,
) -> Any:
    """The ASGI application; ``health`` gives a cluster node's report for ``/health``."""
    web = create_web_app(
        accounts, dashboard, https, metrics_token=metrics_token, unready=unready, health=health
    )
    return Application(ingest, web, serves)
