"""Segment's and PostHog's own Python SDKs, pointed at the real server, and the mapping of
what they send (``engauge/http/sdk.py``): counted once, retries de-duplicated, gzip or not."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import APIKEY, EngaugeServer
from posthog import Posthog
from segment.analytics import Client

PUBLIC_KEY = "public-sdk-key-0123456789"


@pytest.fixture
def sdk_server(start_server: Callable[..., EngaugeServer]) -> EngaugeServer:
    return start_server(env={"ENGAUGE_PUBLICKEY": PUBLIC_KEY})


def actions(server: EngaugeServer) -> dict[str, int]:
    summary = server.summary()
    return {row["value"]: row["count"] for row in summary["actionStats"]["values"]}


def origins(server: EngaugeServer) -> set[tuple[str, str]]:
    return {(row["originType"], row["originID"]) for row in server.get("/dashboard/origin")}


def segment_errors() -> tuple[list[Any], Callable[..., None]]:
    errors: list[Any] = []
    return errors, lambda error, batch: errors.append(error)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_segment_sdk_tracks_pages_screens_and_identifies_once_each(
    sdk_server: EngaugeServer, compressed: bool
) -> None:
    errors, on_error = segment_errors()
    client = Client(
        write_key=APIKEY, host=sdk_server.url, sync_mode=True, gzip=compressed, on_error=on_error
    )
    retried = str(uuid.uuid4())
    for _ in range(2):  # the SDK's retry of one message: the same messageId
        client.track("buyer-1", "Order Completed", {"cart": {"items": 3, "coupon": "X"}},
                     message_id=retried)
    client.page("buyer-1", None, "Pricing", {"path": "/pricing"},
                context={"device": {"type": "desktop"}})
    client.screen(None, None, "Home", {}, anonymous_id="anonymous-7")
    client.identify("buyer-1", {"plan": "pro"})
    client.flush()
    assert errors == []
    assert sdk_server.settled_total() == 4
    assert actions(sdk_server) == {"Order Completed": 1, "view": 2, "identify": 1}
    assert {("page", "/pricing"), ("screen", "Home")} <= origins(sdk_server)
    summary = sdk_server.summary()
    assert {row["value"] for row in summary["userTypeStats"]["values"]} == {"anonymous"}
    assert {row["value"] for row in summary["deviceTypeStats"]["values"]} == {"desktop"}
    cart = sdk_server.get("/dashboard/properties/cart.items")
    assert cart["stats"]["numbers"]["sum"] == 3


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_posthog_sdk_captures_once_each(sdk_server: EngaugeServer, compressed: bool) -> None:
    client = Posthog(APIKEY, host=sdk_server.url, sync_mode=True, gzip=compressed)
    retried = str(uuid.uuid4())
    for _ in range(2):
        client.capture(
            "$pageview",
            distinct_id="visitor-9",
            properties={"$current_url": "https://shop.example/cart?step=2",
                        "$device_type": "Mobile", "coupon": "SPRING"},
            uuid=retried,
        )
    client.capture("purchase", distinct_id="visitor-9", properties={"amount": 12.5})
    client.flush()
    client.shutdown()
    assert sdk_server.settled_total() == 2
    assert actions(sdk_server) == {"view": 1, "purchase": 1}
    assert ("page", "/cart") in origins(sdk_server)
    summary = sdk_server.summary()
    assert {row["value"] for row in summary["deviceTypeStats"]["values"]} == {"mobile"}
    coupon = sdk_server.get("/dashboard/properties/coupon")
    assert coupon["stats"]["values"]["mode"] == "SPRING"
    names = {row["name"] for row in sdk_server.get("/dashboard/properties")}
    assert not any(name.startswith("$") for name in names)  # PostHog's own properties


def test_posthog_flags_answer_no_flags(sdk_server: EngaugeServer) -> None:
    for path in ("/flags/?v=2", "/decide/?v=3"):
        response = sdk_server.request("POST", path, json={"api_key": APIKEY})
        assert response.status_code == 200
        assert response.json()["featureFlags"] == {}


def test_segment_single_message_routes_and_the_write_key_in_the_body(
    sdk_server: EngaugeServer,
) -> None:
    response = sdk_server.request(
        "POST",
        "/v1/track",
        json={"writeKey": APIKEY, "userId": "u-1", "event": "Clicked", "messageId": "m-1"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    assert sdk_server.settled_total() == 1


@pytest.mark.parametrize(
    ("path", "body", "word"),
    [
        ("/v1/batch", {"batch": [{"type": "alias", "userId": "a"}]}, "alias"),
        ("/v1/batch", {"batch": [{"type": "track", "userId": "a"}]}, "action"),
        ("/v1/batch", {"batch": "nope"}, "batch"),
        ("/batch/", {"batch": [{"event": "x"}]}, "userID"),
        ("/capture/", ["not", "events"], "must be a JSON object"),
    ],
)
def test_unmappable_messages_are_400_naming_the_field(
    sdk_server: EngaugeServer, path: str, body: Any, word: str
) -> None:
    response = sdk_server.request("POST", path, json=body, headers={"api-key": APIKEY})
    assert response.status_code == 400, response.text
    assert word in response.json()["message"]
    assert sdk_server.settled_total() == 0


def test_sdk_routes_need_a_key(sdk_server: EngaugeServer) -> None:
    event = {"event": "x", "distinct_id": "d"}
    assert sdk_server.request("POST", "/capture/", json=event).status_code == 401
    wrong = {"api_key": "nope", **event}
    assert sdk_server.request("POST", "/capture/", json=wrong).status_code == 401
    response = sdk_server.request("POST", "/v1/batch", json={"batch": []}, auth=("wrong", ""))
    assert response.status_code == 401


def test_a_body_nested_too_deeply_is_not_a_server_error(sdk_server: EngaugeServer) -> None:
    """Looking for the key in such a body raised RecursionError, a 500, before the key was
    even checked; with or without a key it is now refused for its nesting."""
    deep = b'{"event": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    for headers in ({}, {"api-key": APIKEY}):
        response = sdk_server.request("POST", "/capture/", content=deep, headers=headers)
        assert response.status_code == 400, response.text
        assert "nested too deeply" in response.json()["message"]


def test_a_gzip_bomb_is_refused(sdk_server: EngaugeServer) -> None:
    bomb = gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")
    response = sdk_server.request(
        "POST",
        "/batch/",
        content=bomb,
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert sdk_server.request(
        "POST", "/batch/", content=b"not gzip",
        headers={"content-encoding": "gzip", "api-key": APIKEY},
    ).status_code == 400


def test_the_public_key_is_not_taken_without_an_allowed_origin(sdk_server: EngaugeServer) -> None:
    """ENGAUGE_CORS is * here, so the public key is refused everywhere, naming the fix."""
    body = json.dumps([{"action": "view", "userID": "p"}])
    response = sdk_server.request(
        "POST", f"/api/interactions?key={PUBLIC_KEY}", content=body,
        headers={"origin": "http://127.0.0.1:1"},
    )
    assert response.status_code == 403
    assert "ENGAUGE_CORS" in response.json()["message"]


@pytest.mark.parametrize("path", ["/capture/", "/e/", "/i/v0/e/", "/batch/"])
def test_every_posthog_route_takes_an_event(sdk_server: EngaugeServer, path: str) -> None:
    event = {
        "api_key": APIKEY,
        "event": "$screen",
        "distinct_id": 42,
        "properties": {"$screen_name": "Settings", "$lib": "posthog-ios"},
        "uuid": str(uuid.uuid4()),
    }
    response = sdk_server.request("POST", path, json=event)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == 1
    assert sdk_server.settled_total() == 1
    assert actions(sdk_server) == {"view": 1}
    assert ("screen", "Settings") in origins(sdk_server)


@pytest.mark.parametrize(
    ("path", "message", "action", "origin"),
    [
        ("/v1/track", {"event": "Clicked"}, "Clicked", None),
        ("/v1/page", {"name": "Home", "context": {"page": {"path": "/"}}}, "view", ("page", "/")),
        ("/v1/screen", {"name": "Cart"}, "view", ("screen", "Cart")),
        ("/v1/identify", {"traits": {"plan": "pro"}}, "identify", None),
    ],
)
def test_every_segment_route_takes_its_message(
    sdk_server: EngaugeServer,
    path: str,
    message: dict[str, Any],
    action: str,
    origin: tuple[str, str] | None,
) -> None:
    response = sdk_server.request(
        "POST", path, json={"userId": "s-1", **message}, auth=(APIKEY, "")
    )
    assert response.status_code == 200, response.text
    assert sdk_server.settled_total() == 1
    assert actions(sdk_server) == {action: 1}
    if origin is not None:
        assert origin in origins(sdk_server)


# -- hostile and odd input -----------------------------------------------------------------


def test_a_url_that_cannot_be_read_refuses_that_event_only(sdk_server: EngaugeServer) -> None:
    bad = {"event": "$pageview", "distinct_id": "d", "properties": {"$current_url": "http://["}}
    good = {"event": "ok", "distinct_id": "d"}
    response = sdk_server.request(
        "POST", "/batch/", json={"api_key": APIKEY, "batch": [bad, good]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected"][0]["index"] == 0
    assert "$current_url" in response.json()["rejected"][0]["message"]
    assert sdk_server.settled_total() == 1


@pytest.mark.parametrize(
    ("properties", "word"),
    [
        ({"a.b": 1, "a": {"b": 2}}, "a.b"),
        ("not an object", "properties"),
        ([1, 2], "properties"),
    ],
)
def test_properties_that_would_be_lost_are_refused(
    sdk_server: EngaugeServer, properties: Any, word: str
) -> None:
    message = {"type": "track", "userId": "u", "event": "e", "properties": properties}
    response = sdk_server.request(
        "POST", "/v1/batch", json={"batch": [message]}, auth=(APIKEY, "")
    )
    assert response.status_code == 400, response.text
    assert word in response.json()["message"]


def test_arrays_of_objects_become_one_array_per_key(sdk_server: EngaugeServer) -> None:
    """Segment's e-commerce events carry ``products: [{...}, ...]``."""
    products = [{"sku": "a", "price": 10}, {"sku": "b", "price": 5.5}]
    message = {"type": "track", "userId": "u", "event": "Order Completed",
               "properties": {"products": products}}
    response = sdk_server.request(
        "POST", "/v1/batch", json={"batch": [message]}, auth=(APIKEY, "")
    )
    assert response.status_code == 200, response.text
    price = sdk_server.get("/dashboard/properties/products.price")
    assert price["stats"]["numbers"]["sum"] == 15.5
    sku = sdk_server.get("/dashboard/properties/products.sku")
    assert {row["value"] for row in sku["stats"]["values"]["values"]} == {"a", "b"}


def test_a_client_clock_ahead_is_corrected_by_sent_at(sdk_server: EngaugeServer) -> None:
    """Both SDKs send ``sentAt``: an event 10 minutes "in the future" by a fast client clock
    is counted when it happened by the server's clock, not refused."""
    ahead = datetime.now(UTC) + timedelta(minutes=10)
    message = {"type": "track", "userId": "u", "event": "fast-clock",
               "timestamp": (ahead - timedelta(seconds=30)).isoformat()}
    response = sdk_server.request(
        "POST", "/v1/batch",
        json={"batch": [message], "sentAt": ahead.isoformat()},
        auth=(APIKEY, ""),
    )
    assert response.status_code == 200, response.text
    hourly = sdk_server.summary("daily")
    assert hourly["total"] == 1


@pytest.mark.parametrize(
    "body",
    [
        gzip.compress(b'[{"action": "a", "userID": "u"}]')[:-8],  # the checksum cut off
        gzip.compress(b'[{"action": "a", "userID": "u"}]') + b"trailing",
    ],
    ids=["cut-short", "trailing-bytes"],
)
def test_broken_gzip_is_refused_whole(sdk_server: EngaugeServer, body: bytes) -> None:
    response = sdk_server.request(
        "POST", "/api/interactions", content=body,
        headers={"content-encoding": "gzip", "api-key": APIKEY},
    )
    assert response.status_code == 400
    assert "gzip" in response.json()["message"]
    assert sdk_server.settled_total() == 0


@pytest.mark.parametrize(
    "headers",
    [{"authorization": f"Bearer{APIKEY}"}, {"authorization": f"Bearerx {APIKEY}"}],
    ids=["no-space", "wrong-scheme"],
)
def test_an_authorization_header_must_say_its_scheme(
    sdk_server: EngaugeServer, headers: dict[str, str]
) -> None:
    response = sdk_server.request(
        "POST", "/api/interaction", json={"action": "a", "userID": "u"}, headers=headers
    )
    assert response.status_code == 401


def test_a_key_in_the_url_is_the_public_key_only(sdk_server: EngaugeServer) -> None:
    private = sdk_server.request(
        "POST", f"/api/interaction?key={APIKEY}", json={"action": "a", "userID": "u"}
    )
    assert private.status_code == 401
    assert "URL" in private.json()["message"]
    odd = sdk_server.request("POST", "/api/interaction?key=%E2%82%AC%FF", json={})
    assert odd.status_code == 401


def test_every_ingest_answer_varies_by_origin(sdk_server: EngaugeServer) -> None:
    for path in ("/flags/", "/api/interactions"):
        response = sdk_server.request("POST", path, json=[])
        assert "origin" in response.headers.get("vary", "").lower(), path


def test_a_public_key_request_holds_few_interactions(
    start_server: Callable[..., EngaugeServer],
) -> None:
    origin = "http://127.0.0.1:1"
    server = start_server(env={"ENGAUGE_PUBLICKEY": PUBLIC_KEY, "ENGAUGE_CORS": origin})
    batch = [{"action": "view", "userID": f"p{n}"} for n in range(51)]
    for path, body in (
        (f"/api/interactions?key={PUBLIC_KEY}", batch),
        ("/batch/", {"api_key": PUBLIC_KEY, "batch": [
            {"event": "view", "distinct_id": f"p{n}"} for n in range(51)
        ]}),
    ):
        response = server.request("POST", path, json=body, headers={"origin": origin})
        assert response.status_code == 413, (path, response.text)
    assert server.settled_total() == 0
