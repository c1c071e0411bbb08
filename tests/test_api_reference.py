"""The API reference: ``/openapi.json`` lists every route, schemathesis finds no fault in a
bounded generated run against the real server, and ``/docs`` renders offline in Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import EngaugeServer, wait_until
from playwright.sync_api import Browser, Route, expect
from quart_trio import QuartTrio

from engauge.http.ingest import INGEST_PATHS
from engauge.http.openapi import Undocumented, web_operations
from engauge.http.pages import STATIC_FILES

CONFIG = Path(__file__).parent / "schemathesis.toml"
EXAMPLES = int(os.environ.get("ENGAUGE_FUZZ_EXAMPLES", "25"))
"""Examples per operation and phase: `make test` runs a few thousand requests, `make fuzz` more."""
RUN_SECONDS = 600

SPEC_ROUTES = {
    ("post", "/api/interaction"),
    ("post", "/api/interactions"),
    ("get", "/health"),
    ("post", "/login"),
    ("get", "/login"),
    ("get", "/refresh-token"),
    ("get", "/logout"),
    ("get", "/dashboard/summaries"),
    ("get", "/dashboard/summaries/{interval}"),
    ("get", "/dashboard/series"),
    ("get", "/dashboard/{kind}"),
    ("get", "/dashboard/{kind}/{profile_id}"),
    ("get", "/dashboard/properties"),
    ("get", "/dashboard/properties/{name}"),
    ("get", "/dashboard/settings"),
    ("put", "/dashboard/settings"),
    ("get", "/dashboard/stream"),
    ("get", "/dashboard/export/interactions"),
    ("delete", "/dashboard/users"),
    ("get", "/engauge.js"),
    ("get", "/metrics"),
    ("get", "/health/ready"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
}
"""The routes of SPEC §2, §6, §7 and §10 (the SDK routes are checked from the ingest app)."""


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item}


def test_the_document_lists_every_route(server: EngaugeServer) -> None:
    response = server.request("GET", "/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    listed = operations(document)
    assert listed >= SPEC_ROUTES, SPEC_ROUTES - listed
    assert {path for _, path in listed} >= INGEST_PATHS
    for (method, path), operation in (
        ((method, path), document["paths"][path][method]) for method, path in listed
    ):
        assert operation["responses"], (method, path)
        for status, answer in operation["responses"].items():
            if int(status) >= 400:  # every error is JSON with a schema
                assert answer["content"]["application/json"]["schema"], (method, path, status)


def test_the_document_describes_the_interaction_with_the_validators_limits(
    server: EngaugeServer,
) -> None:
    schemas = server.request("GET", "/openapi.json").json()["components"]["schemas"]
    interaction = schemas["InteractionIn"]
    assert interaction["required"] == ["action", "userID"]
    assert interaction["properties"]["action"]["maxLength"] == 256
    assert set(schemas["SettingsPatch"]["properties"]) == {
        "statsToggles",
        "interactions",
        "retention",
    }
    schemes = server.request("GET", "/openapi.json").json()["components"]["securitySchemes"]
    assert set(schemes) >= {"apiKey", "tokenCookie", "bearerToken"}


def test_a_route_without_an_operation_stops_the_document() -> None:
    web = QuartTrio("undocumented")

    @web.get("/forgotten")
    async def forgotten() -> str:
        return "nobody wrote this down"

    with pytest.raises(Undocumented, match="/forgotten"):
        list(web_operations(web, {"static": STATIC_FILES}))


def metric(server: EngaugeServer, name: str) -> float:
    """The sum of a metric's samples (over all its labels) from ``/metrics``."""
    text = server.request("GET", "/metrics").text
    return sum(float(value) for value in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def counted(server: EngaugeServer) -> float:
    """Interactions counted or recognised as duplicates: every acknowledged one, once applied."""
    return metric(server, "engauge_interactions_counted_total") + metric(
        server, "engauge_interactions_deduplicated_total"
    )


def test_schemathesis_finds_no_fault_and_every_accepted_interaction_is_counted(
    start_server: Callable[..., EngaugeServer],
) -> None:
    server = start_server()
    env = {
        **os.environ,
        "ENGAUGE_APIKEY": server.apikey,
        "ENGAUGE_TOKEN": server.login(),
        "NO_COLOR": "1",
    }
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.url}/openapi.json",
            "--max-examples",
            str(EXAMPLES),
        ],
        env=env,
        cwd=server.basepath.parent,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", report)
    assert generated, report[-3000:]
    print(f"schemathesis: {generated.group(0)}")
    assert int(generated.group(1)) >= 1000

    assert server.request("GET", "/health").text == "alive"
    accepted = metric(server, "engauge_interactions_accepted_total")
    assert accepted > 0
    assert wait_until(lambda: counted(server) == accepted, timeout=10), (accepted, counted(server))
    applied = metric(server, "engauge_interactions_counted_total")
    server.restart()
    assert counted(server) == accepted, "the journal must give back every acknowledged one"
    token = server.login()
    summary = server.request(
        "GET", "/dashboard/summaries/allTime", headers={"Authorization": f"Bearer {token}"}
    )
    assert summary.json()["total"] == applied


def test_the_reference_page_renders_offline_under_its_policy(
    chromium: Browser, server: EngaugeServer
) -> None:
    context = chromium.new_context()
    page = context.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def only_here(route: Route) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    try:
        response = page.goto(server.url + "/docs")
        assert response is not None and response.status == 200
        policy = response.headers["content-security-policy"]
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy
        expect(page.get_by_text("Real-time product analytics")).to_be_visible(timeout=15000)
        expect(page.get_by_text("/api/interactions").first).to_be_visible()
        expect(page.get_by_text("/dashboard/summaries/{interval}").first).to_be_attached()
    finally:
        context.close()
    assert not errors, errors
    assert all("redoc" in url for url in elsewhere), elsewhere  # only its logo, blocked


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_pages_carry_the_security_headers(server: EngaugeServer, path: str) -> None:
    response = server.request("GET", path)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe" not in policy
