"""End-to-end tests of ingestion (SPEC §1, §2) against the real server over HTTP.

Every malformed input must come back as a 400 that names the field, never a 500 or a
silent drop; accepted interactions must become visible within a second.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import EngaugeServer, days_ago, wait_until

SINGLE = "/api/interaction"
BATCH = "/api/interactions"
_counter = itertools.count()


def event(**fields: Any) -> dict[str, Any]:
    """A valid interaction with a user of its own; ``fields`` override or add keys."""
    return {"action": "view", "userID": f"user-{next(_counter)}", **fields}


def unique() -> str:
    return uuid.uuid4().hex[:12]


# -- acceptance ------------------------------------------------------------------------


def test_single_interaction_is_accepted(server: EngaugeServer) -> None:
    """The basic contract: one valid interaction answers 202 {"accepted": 1}."""
    response = server.post_api(SINGLE, event(entityType="page", originID="home"))
    assert response.status_code == 202
    assert response.json() == {"accepted": 1}


def test_batch_as_json_array(server: EngaugeServer) -> None:
    """A JSON array batch is accepted whole, with no "rejected" key when all are valid."""
    response = server.post_api(BATCH, [event(), event(), event()])
    assert response.status_code == 202
    assert response.json() == {"accepted": 3}


def test_batch_as_ndjson(server: EngaugeServer) -> None:
    """NDJSON batches (one object per line, blank lines allowed) are accepted."""
    lines = [json.dumps(event()) for _ in range(4)]
    body = "\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n"
    response = server.post_api(
        BATCH, content=body.encode(), headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 4}


def test_batch_lists_each_rejected_item(server: EngaugeServer) -> None:
    """Valid items are kept; each invalid one is listed by index with the field named."""
    items = [event(), {"action": 5, "userID": "u"}, event(), {"userID": "u"}, event(timestamp="x")]
    response = server.post_api(BATCH, items)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    rejected = answer["rejected"]
    assert [item["index"] for item in rejected] == [1, 3, 4]
    assert "action" in rejected[0]["message"]
    assert "action" in rejected[1]["message"]
    assert "timestamp" in rejected[2]["message"]


def test_ndjson_line_that_is_not_json_is_rejected_by_index(server: EngaugeServer) -> None:
    """A malformed NDJSON line is one rejected item, not a failed batch."""
    body = b'{"action": "view", "userID": "nd"}\n{"action": \n{"action": "v", "userID": "n2"}\n'
    response = server.post_api(
        BATCH, content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    assert [item["index"] for item in answer["rejected"]] == [1]
    assert "JSON" in answer["rejected"][0]["message"]


def test_all_invalid_batch_is_400(server: EngaugeServer) -> None:
    """A batch with no valid item is refused as a whole, naming the fields."""
    response = server.post_api(BATCH, [{"action": "v"}, {"userID": "u"}])
    assert response.status_code == 400
    assert "userID" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"ACTION": "view", "userid": "case-user"}, 202),
        ({"action": "view", "userId": "u", "someUnknownKey": {"deep": [1]}}, 202),
        (
            {
                "action": "view",
                "userID": "u",
                "entityType": None,
                "properties": None,
                "timestamp": None,
                "id": None,
            },
            202,
        ),
        ({"action": "view", "userID": "u", "properties": {"a": None, "b": [1, "x"]}}, 202),
    ],
)
def test_keys_are_case_insensitive_and_null_is_absent(
    server: EngaugeServer, body: dict[str, Any], expected: int
) -> None:
    """SPEC §1: userId fills userID, unknown keys are ignored, null means absent."""
    response = server.post_api(SINGLE, body)
    assert response.status_code == expected, response.text


def test_keys_in_any_case_fill_the_canonical_fields(server: EngaugeServer) -> None:
    """``ENTITYTYPE``/``originid`` count exactly like ``entityType``/``originID``."""
    action = f"case-{unique()}"
    body = {"ACTION": action, "userid": "c", "ENTITYTYPE": "shoe", "originid": "aisle-9"}
    assert server.post_api(SINGLE, body).status_code == 202
    assert wait_until(lambda: _endpoint(server, action) is not None, timeout=1.0)
    endpoint = _endpoint(server, action)
    assert endpoint is not None
    assert (endpoint["entityType"], endpoint["originID"]) == ("shoe", "aisle-9")


def _endpoint(server: EngaugeServer, action: str) -> dict[str, Any] | None:
    rows = server.get("/dashboard/endpoint", limit=1000)
    return next((row for row in rows if row["action"] == action), None)


# -- authentication --------------------------------------------------------------------


@pytest.mark.parametrize("path", [SINGLE, BATCH])
def test_missing_key_is_401(server: EngaugeServer, path: str) -> None:
    """No api-key header: 401 with a JSON message, nothing accepted."""
    body = event() if path == SINGLE else [event()]
    response = server.request("POST", path, json=body)
    assert response.status_code == 401
    assert response.json()["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"api-key": "wrong-key-0123456789"},
        {"api-key": ""},
        {"Authorization": "Bearer wrong-key-0123456789"},
        {"Authorization": "Basic dGVzdDp0ZXN0"},
    ],
)
def test_wrong_key_is_401(server: EngaugeServer, headers: dict[str, str]) -> None:
    """A wrong key, in either header form, is refused."""
    response = server.request("POST", SINGLE, json=event(), headers=headers)
    assert response.status_code == 401
    assert response.json()["message"]


def test_bearer_key_is_accepted(server: EngaugeServer) -> None:
    """Authorization: Bearer <key> works as well as the api-key header."""
    headers = {"Authorization": f"Bearer {server.apikey}"}
    response = server.request("POST", SINGLE, json=event(), headers=headers)
    assert response.status_code == 202, response.text


# -- limits and protocol ---------------------------------------------------------------


def test_single_body_limit_is_64_kib(server: EngaugeServer) -> None:
    """Just under 64 KiB is accepted (unknown keys are ignored); just over is 413."""
    under = event(padding="x" * (64 * 1024 - 200))
    over = event(padding="x" * (64 * 1024 + 10))
    assert server.post_api(SINGLE, under).status_code == 202
    response = server.post_api(SINGLE, over)
    assert response.status_code == 413
    assert response.json()["message"]


def test_batch_holds_at_most_10000_items(server: EngaugeServer) -> None:
    """10,000 items are accepted; 10,001 are 413 and none of them is counted."""
    before = server.settled_total()
    items = [{"action": "bulk", "userID": "bulk"}] * 10_000
    response = server.post_api(BATCH, items)
    assert response.status_code == 202
    assert response.json() == {"accepted": 10_000}
    assert wait_until(lambda: server.total() == before + 10_000, timeout=2.0)
    response = server.post_api(BATCH, [*items, {"action": "bulk", "userID": "bulk"}])
    assert response.status_code == 413
    assert response.json()["message"]
    time.sleep(0.2)
    assert server.total() == before + 10_000


def test_batch_body_limit_is_8_mib(server: EngaugeServer) -> None:
    """A batch body above 8 MiB is 413."""
    response = server.post_api(BATCH, [event(padding="x" * (8 * 1024 * 1024 + 10))])
    assert response.status_code == 413
    assert response.json()["message"]


@pytest.mark.parametrize("path", [SINGLE, BATCH])
@pytest.mark.parametrize(
    "content_type", ["text/html", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_wrong_content_type_is_415(server: EngaugeServer, path: str, content_type: str) -> None:
    """A body that is not JSON (or NDJSON for a batch) is 415."""
    response = server.post_api(
        path, content=b'{"action": "v", "userID": "u"}', headers={"Content-Type": content_type}
    )
    assert response.status_code == 415
    assert response.json()["message"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("path", [SINGLE, BATCH])
def test_other_methods_are_405(server: EngaugeServer, method: str, path: str) -> None:
    """Only POST (and the CORS preflight) is served on the ingest routes."""
    response = server.request(method, path, headers={"api-key": server.apikey})
    assert response.status_code == 405
    assert response.json()["message"]


# -- validation: every bad input is a 400 naming the field -------------------------------

LONG = "x" * 257
STRING_FIELDS = [
    "action",
    "entityType",
    "entityID",
    "originType",
    "originID",
    "userType",
    "userID",
    "deviceType",
    "deviceID",
    "sessionType",
    "id",
]


BAD_INTERACTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("action number", {"action": 5, "userID": "u"}, "action"),
    ("action boolean", {"action": True, "userID": "u"}, "action"),
    ("action array", {"action": ["view"], "userID": "u"}, "action"),
    ("userID number", {"action": "view", "userID": 7}, "userID"),
    ("userID object", {"action": "view", "userID": {"id": 1}}, "userID"),
    ("action missing", {"userID": "u"}, "action"),
    ("userID missing", {"action": "view"}, "userID"),
    ("action empty", {"action": "", "userID": "u"}, "action"),
    ("userID empty", {"action": "view", "userID": ""}, "userID"),
    ("entityID number", {"action": "view", "userID": "u", "entityID": 3}, "entityID"),
    ("id number", {"action": "view", "userID": "u", "id": 42}, "id"),
    ("properties string", {"action": "view", "userID": "u", "properties": "x"}, "properties"),
    ("properties array", {"action": "view", "userID": "u", "properties": [1]}, "properties"),
    (
        "properties 101 keys",
        {"action": "view", "userID": "u", "properties": {f"k{i}": i for i in range(101)}},
        "properties",
    ),
    (
        "property key too long",
        {"action": "view", "userID": "u", "properties": {"k" * 129: 1}},
        "properties",
    ),
    ("property key empty", {"action": "view", "userID": "u", "properties": {"": 1}}, "properties"),
    (
        "property string too long",
        {"action": "view", "userID": "u", "properties": {"note": "y" * 1025}},
        "properties.note",
    ),
    (
        "property nested object",
        {"action": "view", "userID": "u", "properties": {"nested": {"a": 1}}},
        "properties.nested",
    ),
    (
        "property array too long",
        {"action": "view", "userID": "u", "properties": {"tags": list(range(101))}},
        "properties.tags",
    ),
    (
        "property array of objects",
        {"action": "view", "userID": "u", "properties": {"tags": [{"a": 1}]}},
        "properties.tags",
    ),
    (
        "property array of booleans",
        {"action": "view", "userID": "u", "properties": {"tags": [True]}},
        "properties.tags",
    ),
    (
        "property array with null",
        {"action": "view", "userID": "u", "properties": {"tags": ["a", None]}},
        "properties.tags",
    ),
    (
        "property number too big",
        {"action": "view", "userID": "u", "properties": {"big": 10**30}},
        "properties.big",
    ),
    ("timestamp word", {"action": "view", "userID": "u", "timestamp": "yesterday"}, "timestamp"),
    ("timestamp month 13", {"action": "v", "userID": "u", "timestamp": "2024-13-01"}, "timestamp"),
    ("timestamp time only", {"action": "v", "userID": "u", "timestamp": "12:30"}, "timestamp"),
    ("timestamp boolean", {"action": "v", "userID": "u", "timestamp": True}, "timestamp"),
    ("timestamp object", {"action": "v", "userID": "u", "timestamp": {"s": 1}}, "timestamp"),
    ("timestamp array", {"action": "v", "userID": "u", "timestamp": [2024, 1, 1]}, "timestamp"),
    ("timestamp huge", {"action": "v", "userID": "u", "timestamp": 10**30}, "timestamp"),
]
BAD_INTERACTIONS += [
    (f"{name} too long", {"action": "view", "userID": "u", name: LONG}, name)
    for name in STRING_FIELDS
]


@pytest.mark.parametrize(
    ("body", "field"),
    [pytest.param(body, field, id=name) for name, body, field in BAD_INTERACTIONS],
)
def test_bad_interaction_is_400_naming_the_field(
    server: EngaugeServer, body: dict[str, Any], field: str
) -> None:
    """SPEC §1: a 400 whose message names the field; the same item in a batch is rejected."""
    response = server.post_api(SINGLE, body)
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]
    batch = server.post_api(BATCH, [event(), body])
    assert batch.status_code == 202, batch.text
    assert batch.json()["accepted"] == 1
    assert batch.json()["rejected"][0]["index"] == 1
    assert field in batch.json()["rejected"][0]["message"]


def test_string_fields_of_256_characters_are_accepted(server: EngaugeServer) -> None:
    """The 256-character limit is inclusive: the boundary value must pass."""
    body = {name: "z" * 256 for name in STRING_FIELDS}
    body["id"] = unique() + "z" * 244
    response = server.post_api(SINGLE, body)
    assert response.status_code == 202, response.text


def _ahead(form: str) -> Any:
    """A timestamp six minutes ahead of now, in the given form."""
    ahead = datetime.now(UTC) + timedelta(minutes=6)
    if form == "seconds":
        return ahead.timestamp()
    if form == "milliseconds":
        return int(ahead.timestamp() * 1000)
    return ahead.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("form", ["seconds", "milliseconds", "rfc3339"])
def test_timestamp_more_than_five_minutes_ahead_is_400(server: EngaugeServer, form: str) -> None:
    """Clock skew beyond five minutes is refused rather than silently bucketed."""
    response = server.post_api(SINGLE, event(timestamp=_ahead(form)))
    assert response.status_code == 400, response.text
    assert "timestamp" in response.json()["message"]


def test_timestamp_a_little_ahead_is_accepted(server: EngaugeServer) -> None:
    """Up to five minutes of client clock skew is tolerated."""
    response = server.post_api(SINGLE, event(timestamp=time.time() + 120))
    assert response.status_code == 202, response.text


PREFIX = b'{"action": "v", "userID": "u", '
MALFORMED_BODIES = [
    ("truncated", b'{"action": "view", "userID": ', "JSON"),
    ("single-quotes", b"{'action': 'view'}", "JSON"),
    ("trailing-garbage", b'{"action": "view", "userID": "u"} trailing', "JSON"),
    ("invalid-utf8", b'{"action": "v\xff", "userID": "u"}', "JSON"),
    ("nan-literal", b'{"action": "view", "userID": "u", "timestamp": NaN}', "JSON"),
    ("infinite-number", b'{"action": "view", "userID": "u", "timestamp": 1e400}', ""),
    ("empty", b"", "body"),
    ("blank", b"   ", "body"),
    ("empty-array", b"[]", "body"),
    ("array", b'[{"action": "view", "userID": "u"}]', "body"),
    ("string", b'"view"', "body"),
    ("number", b"42", "body"),
    ("null", b"null", "body"),
    ("boolean", b"true", "body"),
    ("deeply-nested-array", b"[" * 5000 + b"]" * 5000, ""),
    ("deeply-nested-property", PREFIX + b'"properties": {"a": ' + b"[" * 5000, ""),
    ("deeply-nested-unknown-key", PREFIX + b'"x": ' + b"[" * 3000 + b"]" * 3000 + b"}", ""),
]


@pytest.mark.parametrize(
    ("content", "word"), [pytest.param(c, w, id=name) for name, c, w in MALFORMED_BODIES]
)
def test_malformed_body_is_400_never_500(server: EngaugeServer, content: bytes, word: str) -> None:
    """Invalid JSON and non-object bodies are 400 with a JSON message (never a 500)."""
    response = server.post_api(SINGLE, content=content)
    assert response.status_code == 400, response.text
    assert word in response.json()["message"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"action": "view", "userID": "u"}', id="object"),
        pytest.param(b"[" * 5000 + b"]" * 5000, id="deeply-nested"),
        pytest.param(b"[1, 2, " + b"[" * 5000, id="deeply-nested-truncated"),
    ],
)
def test_malformed_batch_is_400_never_500(server: EngaugeServer, content: bytes) -> None:
    """A batch that is not a JSON array of objects is a 400, never a 500."""
    response = server.post_api(BATCH, content=content)
    assert response.status_code == 400, response.text
    assert response.json()["message"]


def test_server_survives_bad_input(server: EngaugeServer) -> None:
    """After all the malformed requests above the server still answers."""
    assert server.alive()
    assert server.request("GET", "/health").status_code == 200


# -- timestamps are honoured -------------------------------------------------------------


def _formats(day: Any) -> dict[str, Any]:
    """One timestamp per SPEC §1 format, each at a different hour of ``day`` (UTC)."""
    at = {hour: day.replace(hour=hour) for hour in range(1, 10)}
    return {
        "rfc3339-z": (1, at[1].strftime("%Y-%m-%dT%H:%M:%SZ")),
        "offset": (2, (at[2] + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")),
        "no-offset": (3, at[3].strftime("%Y-%m-%dT%H:%M:%S")),
        "space": (4, at[4].strftime("%Y-%m-%d %H:%M")),
        "space-fraction": (5, at[5].strftime("%Y-%m-%d %H:%M:%S.250")),
        "rfc1123": (6, at[6].strftime("%a, %d %b %Y %H:%M:%S GMT")),
        "epoch-seconds": (7, int(at[7].timestamp())),
        "epoch-millis": (8, int(at[8].timestamp() * 1000)),
        "date-only": (0, day.strftime("%Y-%m-%d")),
    }


def test_every_timestamp_format_lands_in_its_bucket(server: EngaugeServer) -> None:
    """Each accepted format is read as the right instant: its hour's bucket counts it."""
    day = days_ago(1, hour=0)
    formats = _formats(day)
    action = f"fmt-{unique()}"
    for _, timestamp in formats.values():
        server.send(event(action=action, timestamp=timestamp))
    for name, (hour, _) in formats.items():
        at = (day + timedelta(hours=hour, minutes=30)).isoformat()
        summary = server.summary("hourly", at)
        counts = {v["value"]: v["count"] for v in summary["actionStats"]["values"]}
        assert counts.get(action) == 1, f"{name}: {counts}"


# -- CORS ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [SINGLE, BATCH])
def test_cors_preflight(server: EngaugeServer, path: str) -> None:
    """Browsers may send from any origin by default: the preflight allows it."""
    headers = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "api-key, content-type",
    }
    response = server.request("OPTIONS", path, headers=headers)
    assert 200 <= response.status_code < 300
    assert response.headers["access-control-allow-origin"] in ("*", "https://app.example.com")
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "api-key" in allowed
    assert "content-type" in allowed


def test_cors_headers_on_post(server: EngaugeServer) -> None:
    """The actual POST from a browser origin carries the allow-origin header too."""
    headers = {"Origin": "https://app.example.com"}
    response = server.post_api(SINGLE, event(), headers=headers)
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] in ("*", "https://app.example.com")


# -- de-duplication and visibility ---------------------------------------------------------


def test_same_id_twice_is_acknowledged_twice_and_counted_once(server: EngaugeServer) -> None:
    """A retried interaction (same id) gets 202 again but is counted only once."""
    before = server.settled_total()
    retried = event(id=f"evt-{unique()}")
    assert server.post_api(SINGLE, retried).status_code == 202
    assert server.post_api(SINGLE, retried).status_code == 202
    server.send(event())
    assert wait_until(lambda: server.total() >= before + 2, timeout=1.0)
    time.sleep(0.1)
    assert server.total() == before + 2


def test_duplicate_ids_within_one_batch_count_once(server: EngaugeServer) -> None:
    """De-duplication also holds inside a single batch."""
    before = server.settled_total()
    event_id = f"evt-{unique()}"
    server.send(event(id=event_id), event(id=event_id), event())
    assert wait_until(lambda: server.total() >= before + 2, timeout=1.0)
    time.sleep(0.1)
    assert server.total() == before + 2


def test_accepted_interaction_is_visible_within_one_second(server: EngaugeServer) -> None:
    """SPEC §2: an acknowledged interaction shows in the dashboard API within 1 s."""
    before = server.settled_total()
    assert server.post_api(SINGLE, event()).status_code == 202
    acknowledged = time.monotonic()
    assert wait_until(lambda: server.total() > before, timeout=1.0)
    assert time.monotonic() - acknowledged <= 1.2
    assert server.total() == before + 1
