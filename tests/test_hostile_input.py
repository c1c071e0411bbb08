"""Inputs that once took the server down or answered 500: each must now be a clean answer."""

from __future__ import annotations

from conftest import EngaugeServer

SINGLE = "/api/interaction"


def test_huge_retention_is_accepted_and_the_server_keeps_running(server: EngaugeServer) -> None:
    response = server.dash("PUT", "/dashboard/settings", json={"retention": {"yearly": 3000}})
    assert response.status_code == 200, response.text
    series = server.get("/dashboard/series", interval="yearly")
    assert 1 <= len(series["points"]) <= 1000
    server.send({"action": "view", "userID": "after-retention"})
    assert server.alive()
    reset = server.dash("PUT", "/dashboard/settings", json={"retention": {"yearly": 10}})
    assert reset.status_code == 200


def test_enormous_numbers_and_dates_are_400(server: EngaugeServer) -> None:
    for timestamp in (10**400, "Fri, 04 Dec 99999999999 10:00:00 GMT"):
        body = {"action": "view", "userID": "u", "timestamp": timestamp}
        response = server.post_api(SINGLE, body)
        assert response.status_code == 400, (timestamp, response.text)
        assert response.json()["message"].startswith("timestamp")


def test_one_bad_timestamp_in_a_batch_rejects_only_that_item(server: EngaugeServer) -> None:
    items = [
        {"action": "view", "userID": "u"},
        {"action": "view", "userID": "u", "timestamp": 10**400},
    ]
    response = server.post_api("/api/interactions", items)
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["index"] == 1


def test_lone_surrogate_login_is_a_400_like_every_json_body(server: EngaugeServer) -> None:
    body = b'{"username": "\\ud800", "password": "x"}'
    response = server.request("POST", "/login", content=body)
    assert response.status_code == 400
    assert response.json()["message"].startswith("body: invalid JSON")


def test_non_ascii_digits_are_not_a_limit(server: EngaugeServer) -> None:
    response = server.dash("GET", "/dashboard/endpoint", params={"limit": "²"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("limit")


def test_invalid_utf8_login_is_a_400_naming_the_body(server: EngaugeServer) -> None:
    response = server.request("POST", "/login", content=b'{"username": "\xcb"}')
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("body: invalid JSON")


def test_a_null_settings_section_is_refused_not_ignored(server: EngaugeServer) -> None:
    for section in ("statsToggles", "retention"):
        response = server.dash("PUT", "/dashboard/settings", json={section: None})
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith(f"{section}: must be an object")


def test_methods_a_route_does_not_take_are_405(server: EngaugeServer) -> None:
    flags = server.request("TRACE", "/flags")
    assert flags.status_code == 405
    assert flags.headers["allow"] == "GET, POST, OPTIONS"
    users = server.dash("GET", "/dashboard/users")
    assert users.status_code == 405
    assert "DELETE" in users.headers["allow"]


def test_the_largest_floats_in_properties_do_not_stop_the_aggregator(
    server: EngaugeServer,
) -> None:
    largest = 1.7976931348623157e308
    server.send(
        *(
            {"action": "buy", "userID": f"big-{n}", "properties": {"price": largest}}
            for n in range(3)
        )
    )
    found = server.get("/dashboard/properties/price")
    assert found["stats"]["count"] >= 3
    assert found["stats"]["numbers"]["sum"] is None  # beyond a float's range: null, not inf
    assert server.alive()
