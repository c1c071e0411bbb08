"""End-to-end tests of login, security and the dashboard API (SPEC §5, §6, §7).

The ``shop`` stream below is small enough to compute every figure by hand; it is sent with
timestamps 100 days ago, so its daily bucket holds nothing else and its numbers are exact.
"""

from __future__ import annotations

import base64
import json
import math
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from conftest import EngaugeServer, days_ago, no_cookie_client, wait_until

INTERVALS = ["hourly", "daily", "weekly", "monthly", "quarterly", "yearly"]
ALL_INTERVALS = ["allTime", *INTERVALS]
SUMMARY_KEYS = {
    "id",
    "interval",
    "start",
    "end",
    "total",
    "users",
    "sessions",
    "conversions",
    "unitMetrics",
    "actionStats",
    "originTypeStats",
    "entityTypeStats",
    "userTypeStats",
    "deviceTypeStats",
    "sessionTypeStats",
    "sessionStats",
    "conversionStats",
}
DEFAULT_SETTINGS = {
    "statsToggles": dict.fromkeys(INTERVALS, True),
    "interactions": True,
    "retention": {
        "hourly": 72,
        "daily": 400,
        "weekly": 104,
        "monthly": 60,
        "quarterly": 20,
        "yearly": 10,
        "interactions": 365,
    },
}
SHOP_DAY = days_ago(100, hour=0)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def shop_stream() -> list[dict[str, Any]]:
    """Two customers, four views, three conversions: amounts 10 and 30 and one not a number."""
    home = {"originType": "page", "originID": "home"}
    product = {"originType": "page", "originID": "product", "entityType": "product"}
    checkout = {"originType": "page", "originID": "checkout", "entityType": "product"}
    rows = [
        ("u1", "phone", "view", home, {}),
        ("u1", "phone", "view", product, {"plan": "pro", "qty": 1}),
        ("u1", "phone", "conversion", checkout, {"amount": 10, "plan": "pro"}),
        ("u2", "tablet", "view", home, {}),
        ("u2", "tablet", "view", product, {"plan": "free", "qty": 3}),
        ("u2", "tablet", "conversion", checkout, {"amount": 30, "plan": "free"}),
        ("u2", "tablet", "conversion", checkout, {"amount": "n/a"}),
    ]
    stream = []
    for minute, (user, device, action, where, properties) in enumerate(rows):
        item = {"action": action, "userID": user, "userType": "customer", "deviceType": device}
        item.update(where)
        if "entityType" in where:
            item["entityID"] = "p1"
        if properties:
            item["properties"] = properties
        item["timestamp"] = iso(SHOP_DAY + timedelta(hours=10, minutes=minute))
        stream.append(item)
    return stream


@pytest.fixture(scope="module")
def shop(server: EngaugeServer) -> EngaugeServer:
    """The module's server with the shop stream counted."""
    before = server.settled_total()
    server.send(*shop_stream())
    assert wait_until(lambda: server.total() == before + 7, timeout=2.0)
    return server


@pytest.fixture(scope="module")
def catalog(shop: EngaugeServer) -> EngaugeServer:
    """The shop plus entities, origins and properties with 1 to 4 interactions each.

    They are 300 days old, so the shop day's figures stay exact; the lists get enough
    rows with different totals to check paging and sorting.
    """
    before = shop.settled_total()
    moment = iso(days_ago(300))
    items = [
        {
            "action": f"browse-{n}",
            "userID": f"cat-{i}",
            "entityType": "item",
            "entityID": f"e{n}",
            "originID": f"aisle-{n}",
            "properties": {f"tag{n}": "x"},
            "timestamp": moment,
        }
        for n in range(1, 5)
        for i in range(n)
    ]
    shop.send(*items)
    assert wait_until(lambda: shop.total() == before + len(items), timeout=2.0)
    return shop


def find(server: EngaugeServer, kind: str, **identity: str) -> dict[str, Any]:
    """The one row of an endpoint/origin/entity list with these identity fields."""
    rows = server.get(f"/dashboard/{kind}", limit=1000)
    found = [row for row in rows if all(row[k] == v for k, v in identity.items())]
    assert len(found) == 1, (identity, found)
    return dict(found[0])


def approx(value: Any) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-9)


SHOP_AT = iso(SHOP_DAY + timedelta(hours=12))
"""A moment inside the shop day, for ``?at=``."""


# -- login -----------------------------------------------------------------------------


def test_login_sets_token_and_cookie(server: EngaugeServer) -> None:
    """Success answers the token with tokenExpiry 900 and a HttpOnly SameSite=Strict cookie."""
    response = server.request(
        "POST", "/login", json={"username": server.user, "password": server.password}
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["tokenExpiry"] == 900
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith("token=")]
    assert len(cookies) == 1
    attributes = [part.strip().lower() for part in cookies[0].split(";")]
    assert attributes[0] == f"token={answer['token']}".lower()
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes


def test_login_token_is_pinned_hs256_with_15_minutes(server: EngaugeServer) -> None:
    """The token is an HS256 JWT of the configured key, expiring in 900 s."""
    token = server.login()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, server.jwt_key, algorithms=["HS256"])
    assert abs(claims["exp"] - time.time() - 900) <= 5


def test_wrong_credentials_are_401(start_server: Callable[..., EngaugeServer]) -> None:
    """Both the user name and the password are checked (the Go original checked neither);
    a few typos do not lock the real user out."""
    server = start_server()
    attempts = [
        {"username": server.user, "password": "wrong-password"},
        {"username": "root", "password": server.password},
        {"username": server.user, "password": server.password[:-1]},
    ]
    for credentials in attempts:
        response = server.request("POST", "/login", json=credentials)
        assert response.status_code == 401, credentials
        assert response.json()["message"]
        assert not response.headers.get_list("set-cookie")
    assert server.login()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "username"),
        ({"username": "admin"}, "password"),
        ({"password": "secret-password"}, "username"),
        ({"username": 5, "password": "secret-password"}, "username"),
        ({"username": "admin", "password": None}, "password"),
        ([], ""),
        ("admin", ""),
    ],
)
def test_login_with_missing_fields_is_400(server: EngaugeServer, body: Any, field: str) -> None:
    """A malformed login body is a 400 naming what is missing, not a 401 or a 500."""
    response = server.request("POST", "/login", json=body)
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_login_with_invalid_json_is_400(server: EngaugeServer) -> None:
    response = server.request("POST", "/login", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["message"]


def test_repeated_failures_are_slowed_with_429(start_server: Callable[..., EngaugeServer]) -> None:
    """Guessing passwords from one address soon meets 429 with Retry-After, even if correct."""
    server = start_server()
    statuses = []
    for _ in range(12):
        response = server.request("POST", "/login", json={"username": "admin", "password": "x"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {401}
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["message"]
    good = {"username": server.user, "password": server.password}
    assert server.request("POST", "/login", json=good).status_code == 429


# -- tokens ------------------------------------------------------------------------------

PROTECTED = [
    ("GET", "/dashboard/summaries"),
    ("GET", "/dashboard/summaries/allTime"),
    ("GET", "/dashboard/summaries/daily"),
    ("GET", "/dashboard/series?interval=daily&metrics=total"),
    ("GET", "/dashboard/endpoint"),
    ("GET", "/dashboard/origin"),
    ("GET", "/dashboard/entity"),
    ("GET", "/dashboard/properties"),
    ("GET", "/dashboard/endpoint/0123456789abcdef"),
    ("GET", "/dashboard/properties/plan"),
    ("GET", "/dashboard/settings"),
    ("PUT", "/dashboard/settings"),
    ("GET", "/dashboard/export/interactions"),
    ("GET", "/refresh-token"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_dashboard_without_token_is_401(server: EngaugeServer, method: str, path: str) -> None:
    """No data leaves the dashboard API without a login."""
    response = server.request(method, path, json={} if method == "PUT" else None)
    assert response.status_code == 401
    assert response.json()["message"]


def test_token_in_cookie_is_accepted(server: EngaugeServer) -> None:
    response = server.request(
        "GET", "/dashboard/summaries", headers={"Cookie": f"token={server.login()}"}
    )
    assert response.status_code == 200


def test_token_as_bearer_is_accepted(server: EngaugeServer) -> None:
    headers = {"Authorization": f"Bearer {server.login()}"}
    assert server.request("GET", "/dashboard/summaries", headers=headers).status_code == 200


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "admin", "iat": now, "exp": now + 900}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _tampered(token: str) -> str:
    header, _, signature = token.split(".")
    payload = _b64(_claims(exp=int(time.time()) + 10 * 365 * 86400))
    return f"{header}.{payload}.{signature}"


BAD_TOKENS: dict[str, Callable[[EngaugeServer], str]] = {
    "other-key": lambda s: jwt.encode(_claims(), "another-key-" + "x" * 40, algorithm="HS256"),
    "alg-none": lambda s: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
    "tampered-payload": lambda s: _tampered(s.login()),
    "expired": lambda s: jwt.encode(
        _claims(iat=int(time.time()) - 2000, exp=int(time.time()) - 1000),
        s.jwt_key,
        algorithm="HS256",
    ),
    "no-exp": lambda s: jwt.encode(_claims(exp=None), s.jwt_key, algorithm="HS256"),
    "hs512": lambda s: jwt.encode(_claims(), s.jwt_key, algorithm="HS512"),
    "garbage": lambda s: "not.a.token",
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
@pytest.mark.parametrize("where", ["bearer", "cookie"])
def test_bad_tokens_are_401(server: EngaugeServer, kind: str, where: str) -> None:
    """Forged, unsigned, tampered, expired or other-algorithm tokens never get in."""
    token = BAD_TOKENS[kind](server)
    if where == "bearer":
        headers = {"Authorization": f"Bearer {token}"}
    else:
        headers = {"Cookie": f"token={token}"}
    response = server.request("GET", "/dashboard/summaries", headers=headers)
    assert response.status_code == 401
    assert response.json()["message"]


def test_empty_token_cookie_is_401(server: EngaugeServer) -> None:
    response = server.request("GET", "/dashboard/summaries", headers={"Cookie": "token="})
    assert response.status_code == 401


def test_refresh_token_renews_a_valid_token(server: EngaugeServer) -> None:
    """/refresh-token answers a new working token and cookie for a valid one."""
    headers = {"Authorization": f"Bearer {server.login()}"}
    response = server.request("GET", "/refresh-token", headers=headers)
    assert response.status_code == 200
    answer = response.json()
    assert answer["tokenExpiry"] == 900
    assert any(c.startswith("token=") for c in response.headers.get_list("set-cookie"))
    renewed = {"Authorization": f"Bearer {answer['token']}"}
    assert server.request("GET", "/dashboard/summaries", headers=renewed).status_code == 200


def test_refresh_token_with_cookie(server: EngaugeServer) -> None:
    response = server.request(
        "GET", "/refresh-token", headers={"Cookie": f"token={server.login()}"}
    )
    assert response.status_code == 200
    assert response.json()["token"]


@pytest.mark.parametrize("kind", ["expired", "other-key", "garbage"])
def test_refresh_token_refuses_invalid_tokens(server: EngaugeServer, kind: str) -> None:
    headers = {"Authorization": f"Bearer {BAD_TOKENS[kind](server)}"}
    response = server.request("GET", "/refresh-token", headers=headers)
    assert response.status_code == 401
    assert not response.headers.get_list("set-cookie")


def test_logout_clears_the_cookie(server: EngaugeServer) -> None:
    """/logout sends an empty, already expired token cookie."""
    response = server.request("GET", "/logout", headers={"Cookie": f"token={server.login()}"})
    assert response.status_code == 200
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith("token=")]
    assert len(cookies) == 1
    attributes = [part.strip().lower() for part in cookies[0].split(";")]
    assert attributes[0] == "token="
    assert "max-age=0" in attributes or any(
        a.startswith("expires=thu, 01 jan 1970") for a in attributes
    )
    assert "path=/" in attributes


@pytest.mark.parametrize("origin", ["http://evil.example.com", "null", "http://127.0.0.1:1"])
def test_settings_change_from_a_foreign_origin_is_403(server: EngaugeServer, origin: str) -> None:
    """CSRF: a state-changing request from another site is refused and changes nothing."""
    before = server.get("/dashboard/settings")
    response = server.dash(
        "PUT",
        "/dashboard/settings",
        json={"retention": {"daily": 399}},
        headers={"Origin": origin},
    )
    assert response.status_code == 403
    assert response.json()["message"]
    assert server.get("/dashboard/settings") == before


def test_settings_change_from_the_same_origin_is_200(server: EngaugeServer) -> None:
    response = server.dash(
        "PUT", "/dashboard/settings", json={"interactions": True}, headers={"Origin": server.url}
    )
    assert response.status_code == 200, response.text


# -- summaries ---------------------------------------------------------------------------


def _parse(label: str) -> datetime:
    return datetime.fromisoformat(label)


def _interval_of(entry: dict[str, Any]) -> str:
    """The interval a /dashboard/summaries entry is about (its ``interval`` or id prefix)."""
    return str(entry.get("interval") or entry["id"].split(":")[0])


def test_summaries_lists_the_current_bucket_of_every_interval(server: EngaugeServer) -> None:
    """One entry per enabled interval; each calendar bucket contains now."""
    before = datetime.now(UTC)
    entries = server.get("/dashboard/summaries")
    after = datetime.now(UTC)
    assert [_interval_of(entry) for entry in entries] == ALL_INTERVALS
    assert entries[0]["id"] == "allTime"
    assert entries[0]["start"] is None
    assert entries[0]["end"] is None
    for entry in entries[1:]:
        assert entry["id"]
        assert _parse(entry["start"]) <= after
        assert before < _parse(entry["end"]), entry


@pytest.mark.parametrize("interval", ALL_INTERVALS)
def test_summary_of_every_interval_has_every_figure(server: EngaugeServer, interval: str) -> None:
    """Every summary carries the SPEC §5 keys and bounds that contain ``at``."""
    summary = server.summary(interval)
    assert set(summary) >= SUMMARY_KEYS, SUMMARY_KEYS - set(summary)
    assert summary["interval"] == interval
    session_keys = {"started", "completed", "late", "bounced", "bounceRate", "converted"}
    assert set(summary["sessions"]) >= {*session_keys, "conversionRate", "duration"}
    assert set(summary["unitMetrics"]) == {
        "revenuePerUser",
        "revenuePerSession",
        "revenuePerConversion",
        "conversionsPerUser",
    }


BOUNDS_AT = "2024-02-29T13:45:00Z"
EXPECTED_BOUNDS = {
    "hourly": ("2024-02-29T13:00:00+00:00", "2024-02-29T14:00:00+00:00"),
    "daily": ("2024-02-29T00:00:00+00:00", "2024-03-01T00:00:00+00:00"),
    "weekly": ("2024-02-26T00:00:00+00:00", "2024-03-04T00:00:00+00:00"),
    "monthly": ("2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"),
    "quarterly": ("2024-01-01T00:00:00+00:00", "2024-04-01T00:00:00+00:00"),
    "yearly": ("2024-01-01T00:00:00+00:00", "2025-01-01T00:00:00+00:00"),
}


@pytest.mark.parametrize("interval", INTERVALS)
def test_summary_at_a_given_time_has_calendar_bounds(server: EngaugeServer, interval: str) -> None:
    """?at= picks the calendar bucket containing it (leap day, Monday weeks, UTC)."""
    summary = server.summary(interval, BOUNDS_AT)
    start, end = EXPECTED_BOUNDS[interval]
    assert _parse(summary["start"]) == _parse(start)
    assert _parse(summary["end"]) == _parse(end)


def test_past_buckets_count_backfilled_interactions(server: EngaugeServer) -> None:
    """Interactions from 200 days ago land in that day's and month's buckets, not today's."""
    past = days_ago(200, hour=9)
    all_time = server.settled_total()
    before = {name: server.summary(name)["total"] for name in ("daily", "monthly")}
    items = [
        {"action": "backfill", "userID": f"past-{i}", "timestamp": iso(past + timedelta(hours=i))}
        for i in range(3)
    ]
    server.send(*items)
    assert wait_until(lambda: server.total() == all_time + 3, timeout=1.0)
    for name in ("daily", "weekly", "monthly"):
        summary = server.summary(name, iso(past))
        assert summary["total"] == 3, name
        assert summary["users"] == 3, name
        assert _parse(summary["start"]) <= past < _parse(summary["end"])
    assert server.summary("daily", iso(past))["start"].startswith(past.strftime("%Y-%m-%dT00:00"))
    for name, total in before.items():
        assert server.summary(name)["total"] == total, name


def test_unknown_interval_is_404(server: EngaugeServer) -> None:
    response = server.dash("GET", "/dashboard/summaries/fortnightly")
    assert response.status_code == 404
    assert response.json()["message"]


@pytest.mark.parametrize(
    "at",
    ["garbage", "2024-02-30", "nan", "inf", "1e300", "9999-12-31", "0001-01-01T00:00:00+01:00"],
)
@pytest.mark.parametrize("interval", ["daily", "yearly"])
def test_bad_or_extreme_at_is_never_500(server: EngaugeServer, at: str, interval: str) -> None:
    """An ``at`` that is no date is a 400 naming it; an extreme date is 200 or 400, never 500."""
    response = server.dash("GET", f"/dashboard/summaries/{interval}", params={"at": at})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert "at" in response.json()["message"]


def test_disabled_interval_is_400(server: EngaugeServer) -> None:
    """A disabled interval leaves the list and its summary and series answer 400."""
    disabled = server.dash("PUT", "/dashboard/settings", json={"statsToggles": {"hourly": False}})
    assert disabled.status_code == 200, disabled.text
    try:
        listed = [_interval_of(entry) for entry in server.get("/dashboard/summaries")]
        assert "hourly" not in listed
        response = server.dash("GET", "/dashboard/summaries/hourly")
        assert response.status_code == 400
        assert "hourly" in response.json()["message"]
        series = server.dash("GET", "/dashboard/series", params={"interval": "hourly"})
        assert series.status_code == 400
    finally:
        enabled = server.dash("PUT", "/dashboard/settings", json={"statsToggles": {"hourly": True}})
        assert enabled.status_code == 200
    assert server.summary("hourly")["interval"] == "hourly"


# -- exact figures -------------------------------------------------------------------------


def test_shop_summary_figures_are_exact(shop: EngaugeServer) -> None:
    """Totals, users, conversions, revenue and unit metrics as computed by hand."""
    summary = shop.summary("daily", SHOP_AT)
    assert summary["total"] == 7
    assert summary["users"] == 2
    conversions = summary["conversions"]
    assert conversions["count"] == 3
    assert conversions["revenue"] == approx(40)
    assert conversions["amount"] == {
        "count": 2,
        "sum": approx(40),
        "mean": approx(20),
        "min": approx(10),
        "max": approx(30),
        "variance": approx(200),
        "stdDev": approx(math.sqrt(200)),
    }
    assert summary["unitMetrics"] == {
        "revenuePerUser": approx(20),
        "revenuePerSession": approx(20),
        "revenuePerConversion": approx(40 / 3),
        "conversionsPerUser": approx(1.5),
    }


def test_shop_sessions_are_open_and_ratios_undefined(shop: EngaugeServer) -> None:
    """Two sessions started; none completed yet, so the rates are null (never NaN)."""
    sessions = shop.summary("daily", SHOP_AT)["sessions"]
    assert sessions["started"] == 2
    assert sessions["completed"] == 0
    assert sessions["late"] == 0
    assert sessions["bounceRate"] is None
    assert sessions["conversionRate"] is None
    assert sessions["duration"]["count"] == 0
    assert sessions["duration"]["mean"] is None
    assert sessions["duration"]["variance"] is None


def test_shop_distributions_are_exact(shop: EngaugeServer) -> None:
    """Values sorted by count then value, percentages as fractions of the total."""
    summary = shop.summary("daily", SHOP_AT)
    assert summary["actionStats"] == {
        "total": 7,
        "distinct": 2,
        "mode": "view",
        "values": [
            {"value": "view", "count": 4, "percentage": approx(4 / 7)},
            {"value": "conversion", "count": 3, "percentage": approx(3 / 7)},
        ],
        "other": 0,
    }
    devices = summary["deviceTypeStats"]
    assert [(v["value"], v["count"]) for v in devices["values"]] == [("tablet", 4), ("phone", 3)]
    assert summary["userTypeStats"]["values"] == [
        {"value": "customer", "count": 7, "percentage": approx(1.0)}
    ]
    assert summary["entityTypeStats"]["total"] == 5
    assert summary["originTypeStats"]["total"] == 7
    assert summary["sessionTypeStats"] == {
        "total": 0,
        "distinct": 0,
        "mode": None,
        "values": [],
        "other": 0,
    }


def test_shop_conversion_stats_per_endpoint(shop: EngaugeServer) -> None:
    """All three conversions share one endpoint; the non-numeric amount adds no revenue."""
    stats = shop.summary("daily", SHOP_AT)["conversionStats"]
    endpoint = find(shop, "endpoint", action="conversion", originID="checkout")
    assert len(stats) == 1
    assert stats[0]["endpoint"] == endpoint["id"]
    assert stats[0]["count"] == 3
    assert stats[0]["revenue"] == approx(40)
    assert stats[0]["amount"]["count"] == 2


def test_shop_is_not_in_todays_bucket(shop: EngaugeServer) -> None:
    """Backfilled interactions do not leak into the current bucket."""
    today = shop.summary("daily")
    assert not any(v["value"] == "conversion" for v in today["actionStats"]["values"])


# -- series --------------------------------------------------------------------------------


def _series(server: EngaugeServer, **params: str) -> httpx.Response:
    return server.dash("GET", "/dashboard/series", params=params)


def test_series_has_one_point_per_bucket(shop: EngaugeServer) -> None:
    """Daily points from the day before to the day after the shop day, zeros around it."""
    metrics = "total,users,sessions.started,conversions.revenue"
    response = _series(
        shop,
        interval="daily",
        metrics=metrics,
        **{"from": iso(SHOP_DAY - timedelta(days=1)), "to": iso(SHOP_DAY + timedelta(days=2))},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["interval"] == "daily"
    points = answer["points"]
    assert [_parse(p["start"]) for p in points] == [
        SHOP_DAY + timedelta(days=d) for d in (-1, 0, 1)
    ]
    assert points[1] == {
        "start": points[1]["start"],
        "total": 7,
        "users": 2,
        "sessions.started": 2,
        "conversions.revenue": approx(40),
    }
    for point in (points[0], points[2]):
        assert point["total"] == 0
        assert point["users"] == 0
        assert point["conversions.revenue"] == 0


def test_series_scoped_to_an_endpoint(shop: EngaugeServer) -> None:
    """scope=endpoint:ID restricts the figures to that endpoint."""
    endpoint = find(shop, "endpoint", action="conversion", originID="checkout")
    response = _series(
        shop,
        interval="monthly",
        metrics="total,users,conversions.count,conversions.revenue",
        scope=f"endpoint:{endpoint['id']}",
        **{"from": iso(SHOP_DAY), "to": iso(SHOP_DAY + timedelta(days=1))},
    )
    assert response.status_code == 200, response.text
    (point,) = response.json()["points"]
    assert point["total"] == 3
    assert point["users"] == 2
    assert point["conversions.count"] == 3
    assert point["conversions.revenue"] == approx(40)


@pytest.mark.parametrize("kind", ["origin", "entity"])
def test_series_scoped_to_an_origin_or_entity(shop: EngaugeServer, kind: str) -> None:
    identity = {"originID": "product"} if kind == "origin" else {"entityID": "p1"}
    row = find(shop, kind, **identity)
    response = _series(
        shop,
        interval="daily",
        metrics="total",
        scope=f"{kind}:{row['id']}",
        **{"from": iso(SHOP_DAY), "to": iso(SHOP_DAY + timedelta(hours=1))},
    )
    assert response.status_code == 200, response.text
    assert response.json()["points"][0]["total"] == (2 if kind == "origin" else 5)


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"interval": "daily", "metrics": "nonsense"}, "metrics"),
        ({"interval": "daily", "metrics": "total,sessions.nope"}, "metrics"),
        ({"interval": "daily", "metrics": "sessions"}, "metrics"),
        ({"interval": "daily", "scope": "planet:earth"}, "scope"),
        ({"interval": "daily", "from": "2024-02-02", "to": "2024-02-01"}, "from"),
        ({"interval": "daily", "from": "soon"}, "from"),
        ({"interval": "hourly", "from": "2000-01-01", "to": "2024-01-01"}, ""),
    ],
)
def test_bad_series_requests_are_400(
    server: EngaugeServer, params: dict[str, str], word: str
) -> None:
    response = _series(server, **params)
    assert response.status_code == 400, response.text
    assert word in response.json()["message"]


def test_series_before_the_kept_history_is_empty_not_an_error(server: EngaugeServer) -> None:
    """``to`` alone, older than retention: the default range is empty (a chart of nothing)."""
    response = _series(server, interval="hourly", to="2020-01-01T00:00:00Z")
    assert response.status_code == 200, response.text
    assert response.json() == {"interval": "hourly", "points": []}


def test_dashboard_answers_are_never_cached(server: EngaugeServer) -> None:
    assert server.dash("GET", "/dashboard/summaries").headers["cache-control"] == "no-store"
    assert server.request("POST", "/login", json={}).headers["cache-control"] == "no-store"


def test_series_with_unknown_scope_id_is_an_error(server: EngaugeServer) -> None:
    response = _series(server, interval="daily", scope="endpoint:0000000000000000")
    assert response.status_code in (400, 404)
    assert response.json()["message"]


# -- lists and details -----------------------------------------------------------------------

KINDS = ["endpoint", "origin", "entity", "properties"]


@pytest.mark.parametrize("kind", KINDS)
def test_list_is_sorted_by_total_with_a_total_count(catalog: EngaugeServer, kind: str) -> None:
    """Default sort is all-time total descending; x-total-count is the number of rows."""
    response = catalog.dash("GET", f"/dashboard/{kind}", params={"limit": 1000})
    assert response.status_code == 200
    rows = response.json()
    assert int(response.headers["x-total-count"]) == len(rows) > 0
    totals = [row["total"] for row in rows]
    assert totals == sorted(totals, reverse=True)
    assert len(set(totals)) >= 4
    assert all(row["id"] for row in rows)


@pytest.mark.parametrize("kind", KINDS)
def test_list_pages_with_offset_and_limit(catalog: EngaugeServer, kind: str) -> None:
    everything = catalog.get(f"/dashboard/{kind}", limit=1000)
    assert len(everything) >= 5
    assert catalog.get(f"/dashboard/{kind}", offset=1, limit=2) == everything[1:3]
    assert catalog.get(f"/dashboard/{kind}", limit=1) == everything[:1]
    response = catalog.dash("GET", f"/dashboard/{kind}", params={"offset": 10_000})
    assert response.json() == []
    assert int(response.headers["x-total-count"]) == len(everything)


@pytest.mark.parametrize("kind", KINDS)
def test_list_sort_orders(catalog: EngaugeServer, kind: str) -> None:
    """``-total`` sorts descending, ``total`` ascending."""
    ascending = [row["total"] for row in catalog.get(f"/dashboard/{kind}", sort="total")]
    descending = [row["total"] for row in catalog.get(f"/dashboard/{kind}", sort="-total")]
    assert ascending == sorted(ascending)
    assert descending == sorted(descending, reverse=True)


def test_list_default_limit_is_50(start_server: Callable[..., EngaugeServer]) -> None:
    """Without a limit, 50 rows come back while x-total-count tells the whole."""
    server = start_server()
    server.send(*({"action": f"a{i}", "userID": "u"} for i in range(60)))
    assert wait_until(lambda: server.total() == 60, timeout=1.0)
    response = server.dash("GET", "/dashboard/endpoint")
    assert len(response.json()) == 50
    assert response.headers["x-total-count"] == "60"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "1001"},
        {"limit": "0"},
        {"limit": "ten"},
        {"offset": "-1"},
        {"sort": "nonexistent"},
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_bad_list_parameters_are_400(
    shop: EngaugeServer, kind: str, params: dict[str, str]
) -> None:
    response = shop.dash("GET", f"/dashboard/{kind}", params=params)
    assert response.status_code == 400
    assert next(iter(params)) in response.json()["message"]


def test_limit_1000_is_allowed(shop: EngaugeServer) -> None:
    assert shop.dash("GET", "/dashboard/endpoint", params={"limit": 1000}).status_code == 200


def test_endpoint_list_rows_carry_identity_and_figures(shop: EngaugeServer) -> None:
    row = find(shop, "endpoint", action="conversion", originID="checkout")
    assert row["entityType"] == "product"
    assert row["entityID"] == "p1"
    assert row["originType"] == "page"
    assert row["total"] == 3
    assert row["users"] == 2
    assert row["conversions"]["count"] == 3


def test_endpoint_details_have_stats_per_interval(shop: EngaugeServer) -> None:
    """Details: identity plus a profile for the bucket of every interval containing ``at``."""
    row = find(shop, "endpoint", action="conversion", originID="checkout")
    details = shop.get(f"/dashboard/endpoint/{row['id']}", at=SHOP_AT)
    assert details["id"] == row["id"]
    assert details["action"] == "conversion"
    assert set(details["stats"]) == set(ALL_INTERVALS)
    for interval in ["allTime", "daily", "weekly", "monthly"]:
        stats = details["stats"][interval]
        assert stats["total"] == 3, interval
        assert stats["users"] == 2, interval
        assert stats["conversions"]["count"] == 3, interval
        assert stats["conversions"]["revenue"] == approx(40), interval
    amount = details["stats"]["daily"]["propertyStats"]["amount"]
    assert amount["count"] == 3
    assert amount["numbers"]["sum"] == approx(40)
    assert [(v["value"], v["count"]) for v in amount["values"]["values"]] == [("n/a", 1)]
    today = shop.get(f"/dashboard/endpoint/{row['id']}")["stats"]["daily"]
    assert today["total"] == 0


def test_origin_details(shop: EngaugeServer) -> None:
    row = find(shop, "origin", originType="page", originID="product")
    details = shop.get(f"/dashboard/origin/{row['id']}", at=SHOP_AT)
    daily = details["stats"]["daily"]
    assert daily["total"] == 2
    assert daily["users"] == 2
    assert [(v["value"], v["count"]) for v in daily["actionStats"]["values"]] == [("view", 2)]
    assert daily["entityTypeStats"]["values"][0]["value"] == "product"
    assert {"entries", "exits", "bounces", "bounceRate"} <= set(daily)


def test_entity_details(shop: EngaugeServer) -> None:
    row = find(shop, "entity", entityType="product", entityID="p1")
    daily = shop.get(f"/dashboard/entity/{row['id']}", at=SHOP_AT)["stats"]["daily"]
    assert daily["total"] == 5
    counts = {v["value"]: v["count"] for v in daily["actionStats"]["values"]}
    assert counts == {"view": 2, "conversion": 3}


@pytest.mark.parametrize("kind", ["endpoint", "origin", "entity"])
def test_unknown_id_is_404(server: EngaugeServer, kind: str) -> None:
    response = server.dash("GET", f"/dashboard/{kind}/0000000000000000")
    assert response.status_code == 404
    assert response.json()["message"]


def test_property_details(shop: EngaugeServer) -> None:
    """Strings become a distribution, numbers NumberStats; per-interval stats for ``at``."""
    plan = shop.get("/dashboard/properties/plan", at=SHOP_AT)
    assert plan["id"] == "plan"
    assert plan["types"] == ["string"]
    assert plan["stats"]["count"] == 4
    values = plan["stats"]["values"]["values"]
    assert [(v["value"], v["count"]) for v in values] == [("free", 2), ("pro", 2)]
    assert plan["stats"]["numbers"]["count"] == 0
    assert plan["dailyStats"]["count"] == 4
    assert {f"{name}Stats" for name in INTERVALS} <= set(plan)
    qty = shop.get("/dashboard/properties/qty")
    assert qty["types"] == ["number"]
    numbers = qty["stats"]["numbers"]
    assert (numbers["count"], numbers["min"], numbers["max"]) == (2, 1, 3)
    assert numbers["mean"] == approx(2)
    assert numbers["variance"] == approx(2)
    assert not qty["dailyStats"]


def test_property_list_rows(shop: EngaugeServer) -> None:
    rows = {row["id"]: row for row in shop.get("/dashboard/properties", limit=1000)}
    assert rows["plan"]["total"] == 4
    assert rows["amount"]["total"] == 3
    assert sorted(rows["amount"]["types"]) == ["number", "string"]


def test_unknown_property_is_404(server: EngaugeServer) -> None:
    response = server.dash("GET", "/dashboard/properties/no-such-property")
    assert response.status_code == 404
    assert response.json()["message"]


# -- sessions complete by the clock ------------------------------------------------------------


def test_completed_sessions_figures(start_server: Callable[..., EngaugeServer]) -> None:
    """With a 1.5 s session gap, sessions complete by the clock with exact figures."""
    server = start_server(env={"ENGAUGE_SESSIONDELAY": "0.025"})
    t0 = float(int(time.time()) - 60)
    server.send(
        {"action": "view", "userID": "a", "originID": "home", "timestamp": t0},
        {"action": "view", "userID": "a", "originID": "shop", "timestamp": t0 + 0.5},
        {
            "action": "conversion",
            "userID": "a",
            "originID": "checkout",
            "timestamp": t0 + 1,
            "properties": {"amount": 5},
        },
        {"action": "view", "userID": "b", "originID": "home", "timestamp": t0},
    )
    assert wait_until(lambda: server.summary()["sessions"]["completed"] == 2, timeout=5.0)
    sessions = server.summary("daily", t0)["sessions"]
    assert (sessions["started"], sessions["completed"]) == (2, 2)
    assert (sessions["bounced"], sessions["converted"]) == (1, 1)
    assert sessions["bounceRate"] == approx(0.5)
    assert sessions["conversionRate"] == approx(0.5)
    assert sessions["duration"]["sum"] == approx(1.0)
    assert sessions["duration"]["max"] == approx(1.0)
    assert sessions["interactions"]["sum"] == 4
    home = server.get(f"/dashboard/origin/{find(server, 'origin', originID='home')['id']}")
    figures = home["stats"]["allTime"]
    assert (figures["entries"], figures["exits"], figures["bounces"]) == (2, 1, 1)
    assert figures["bounceRate"] == approx(0.5)


# -- settings ------------------------------------------------------------------------------


def test_settings_merge_a_partial_object(server: EngaugeServer) -> None:
    """PUT changes only the keys it names; GET shows the result."""
    before = server.get("/dashboard/settings")
    response = server.dash("PUT", "/dashboard/settings", json={"retention": {"daily": 401}})
    assert response.status_code == 200, response.text
    expected = {**before, "retention": {**before["retention"], "daily": 401}}
    assert response.json() == expected
    assert server.get("/dashboard/settings") == expected
    restore = {"retention": {"daily": before["retention"]["daily"]}}
    assert server.dash("PUT", "/dashboard/settings", json=restore).status_code == 200


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"retention": {"daily": 0}}, "retention.daily"),
        ({"retention": {"daily": -3}}, "retention.daily"),
        ({"retention": {"daily": "5"}}, "retention.daily"),
        ({"retention": {"daily": 1.5}}, "retention.daily"),
        ({"retention": {"daily": True}}, "retention.daily"),
        ({"retention": {"decade": 5}}, "decade"),
        ({"retention": 5}, "retention"),
        ({"statsToggles": {"daily": "yes"}}, "statsToggles.daily"),
        ({"statsToggles": {"daily": 1}}, "statsToggles.daily"),
        ({"statsToggles": "all"}, "statsToggles"),
        ({"interactions": "no"}, "interactions"),
        ({"bogus": 1}, "bogus"),
        ([], ""),
        ("daily", ""),
    ],
)
def test_invalid_settings_are_400_naming_the_key(
    server: EngaugeServer, patch: Any, key: str
) -> None:
    """A bad patch is refused whole, with the key at fault named; nothing changes."""
    before = server.get("/dashboard/settings")
    response = server.dash("PUT", "/dashboard/settings", json=patch)
    assert response.status_code == 400, response.text
    assert key in response.json()["message"]
    assert server.get("/dashboard/settings") == before


def test_settings_with_invalid_json_are_400(server: EngaugeServer) -> None:
    response = server.dash("PUT", "/dashboard/settings", content=b"{retention")
    assert response.status_code == 400
    assert response.json()["message"]


def test_settings_persist_across_restart(start_server: Callable[..., EngaugeServer]) -> None:
    """Defaults as SPEC §4 says; a change survives a restart, and applies after it."""
    server = start_server()
    assert server.get("/dashboard/settings") == DEFAULT_SETTINGS
    patch = {"statsToggles": {"quarterly": False}, "retention": {"hourly": 48}}
    changed = server.dash("PUT", "/dashboard/settings", json=patch).json()
    server.restart()
    assert server.get("/dashboard/settings") == changed
    assert changed["retention"]["hourly"] == 48
    assert changed["statsToggles"]["quarterly"] is False
    listed = [_interval_of(entry) for entry in server.get("/dashboard/summaries")]
    assert "quarterly" not in listed
    assert server.dash("GET", "/dashboard/summaries/quarterly").status_code == 400


# -- other routes ----------------------------------------------------------------------------


def test_health(server: EngaugeServer) -> None:
    response = server.request("GET", "/health")
    assert response.status_code == 200
    assert response.text == "alive"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "path", ["/nope", "/dashboard/nope", "/dashboard/endpoint/a/b", "/api/nope", "/login/x"]
)
def test_unknown_route_is_404_json(server: EngaugeServer, path: str) -> None:
    response = server.dash("GET", path, headers={"api-key": server.apikey})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/dashboard/summaries"), ("DELETE", "/dashboard/settings"), ("PUT", "/login")],
)
def test_wrong_method_is_405_json(server: EngaugeServer, method: str, path: str) -> None:
    response = server.dash(method, path)
    assert response.status_code == 405
    assert response.json()["message"]


# -- connections -------------------------------------------------------------------------------


def test_refused_requests_do_not_stall_a_kept_alive_connection(
    start_server: Callable[..., EngaugeServer],
) -> None:
    """A browser reuses its connection: a refused request with an unread body must not
    leave the next request on that connection without an answer."""
    server = start_server()
    token = {"Authorization": f"Bearer {server.token}"}
    refused = [
        ("PUT", "/dashboard/settings", {}, {401}),
        ("PUT", "/dashboard/settings", {"Origin": "http://evil.example.com", **token}, {403}),
        ("POST", "/login", {}, {401, 429}),
    ]
    with no_cookie_client(server.url, keep_alive=True) as client:
        for round_ in range(10):
            for method, path, headers, statuses in refused:
                body = {"username": "nobody", "password": "wrong"} if path == "/login" else {}
                response = client.request(method, path, json=body, headers=headers)
                assert response.status_code in statuses
                try:
                    client.get("/health", timeout=1.0)
                except httpx.ReadTimeout:
                    server.kill()  # a stalled connection would hold up a graceful stop
                    pytest.fail(f"no answer after {method} {path}, round {round_}")


def _idle_connection(server: EngaugeServer, path: str) -> socket.socket:
    """A raw connection that made one request on ``path``, read the answer and kept alive."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=15)
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"alive"):
        answer += connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200")
    return connection


def test_an_idle_kept_alive_connection_does_not_hold_up_a_stop(
    start_server: Callable[..., EngaugeServer],
) -> None:
    """A browser tab keeps connections open between requests; a stop must not wait for them."""
    server = start_server()
    connection = _idle_connection(server, "/health")
    try:
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 3
        assert connection.recv(1) == b""  # closed by the server
    finally:
        connection.close()


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(
    server: EngaugeServer,
) -> None:
    connection = _idle_connection(server, "/health")
    try:
        started = time.monotonic()
        assert connection.recv(1) == b""
        assert time.monotonic() - started < 10
    finally:
        connection.close()


def test_property_names_with_slashes_and_percent_signs_have_details(
    server: EngaugeServer,
) -> None:
    names = ["/lead", "a//b", "x/", "%41", "q?x#y", "ünï"]
    server.send({"action": "named", "userID": "names", "properties": dict.fromkeys(names, 1)})
    for name in names:
        response = server.dash("GET", "/dashboard/properties/" + quote(name, safe=""))
        assert response.status_code == 200, (name, response.text)
        assert response.json()["id"] == name
