"""Routes for whoever runs Engauge: ``GET /metrics`` (Prometheus) and ``GET /health/ready``.

``/health`` (liveness) stays in the app itself; readiness says whether this process can take
interactions now: not while its journal cannot be written.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Quart, Response, request

from engauge.http.auth import digest
from engauge.http.errors import ApiError
from engauge.http.jsonio import json_response
from engauge.http.openapi import Operation, documented
from engauge.http.shapes import Readiness
from engauge.metrics import REGISTRY


def add_operations(
    web: Quart, metrics_token: str | None, unready: Callable[[], str | None]
) -> None:
    """``metrics_token``, when set, must come as ``Authorization: Bearer``; ``unready`` gives
    the reason this process cannot take interactions now, or ``None``."""
    token = None if metrics_token is None else digest(metrics_token)

    @web.get("/metrics")
    @documented(
        Operation(
            "Prometheus metrics",
            "operations",
            {200: None},
            errors=(401,),
            content=(CONTENT_TYPE_LATEST,),
            security=("bearerToken",) if metrics_token else (),
        )
    )
    async def metrics() -> Response:
        if token is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(digest(given), token):
                raise ApiError(401, "send ENGAUGE_METRICSTOKEN as Authorization: Bearer")
        return Response(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)

    @web.get("/health/ready")
    @documented(
        Operation(
            "Readiness: whether interactions are taken now",
            "operations",
            {200: Readiness, 503: Readiness},
            security=(),
        )
    )
    async def ready() -> Response:
        reason = unready()
        if reason is not None:
            return json_response({"ready": False, "reason": reason}, 503)
        return json_response({"ready": True})
