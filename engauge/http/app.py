"""The HTTP application: ingest fast path in front of the Quart app (login, health, dashboard).

:class:`Application` is the one ASGI callable: ``/api/*`` and the SDK-compatible ingest
routes go straight to :class:`~engauge.http.ingest.IngestApp`; everything else, lifespan
included, to Quart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import trio
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


class Application:
    """Routes the ingest paths to the ingest fast path and the rest to Quart.

    Until ``ingest`` is set (recovery is running), only the health routes answer; every
    other request gets ``503`` with ``Retry-After``, so nothing reads a half-built state.
    """

    def __init__(self, ingest: IngestApp | None, web: Quart) -> None:
        self.ingest = ingest
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.web(scope, receive, send)  # type: ignore[arg-type]
            return
        path = scope["path"]
        started = time.perf_counter()
        try:
            if self.ingest is None and path not in HEALTH_PATHS:
                await respond(send, 503, RECOVERING, [(b"retry-after", b"5")])
            elif is_ingest(path) and self.ingest is not None:
                await self.ingest(scope, receive, send)
            else:
                await self.web(scope, receive, _shielded(send))  # type: ignore[arg-type]
        finally:
            REQUEST_SECONDS.labels(route_label(path)).observe(time.perf_counter() - started)


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
            "Liveness: `alive` while the process runs",
            "operations",
            {200: None},
            content=("text/plain",),
            security=(),
        )
    )
    async def health() -> Response:
        return Response("alive", content_type="text/plain")

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
) -> Any:
    return Application(
        ingest,
        create_web_app(accounts, dashboard, https, metrics_token=metrics_token, unready=unready),
    )
