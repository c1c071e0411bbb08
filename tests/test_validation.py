"""validate_interaction against SPEC §1: every rule, every timestamp format, every message.

A rejected interaction is a 400 whose message names the field, so every error here is also
checked to start with the field it is about.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engauge.stream.validation import InvalidInteraction, validate_interaction

settings.register_profile("engauge-validation", max_examples=150, deadline=None)
VALIDATION = settings.get_profile("engauge-validation")

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime.fromisoformat("2026-12-04T20:00:00+00:00").timestamp()

STRING_FIELDS = {
    "action": "action",
    "entityType": "entity_type",
    "entityID": "entity_id",
    "originType": "origin_type",
    "originID": "origin_id",
    "userType": "user_type",
    "userID": "user_id",
    "deviceType": "device_type",
    "deviceID": "device_id",
    "sessionType": "session_type",
    "id": "id",
}


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def valid(**fields: Any) -> dict[str, Any]:
    """A minimal valid interaction with ``fields`` added or replaced."""
    return {"action": "view", "userID": "u1", **fields}


def validate(item: object, now: float = NOW) -> Any:
    return validate_interaction(item, now=now, zone=BERLIN)


def rejection(item: object, now: float = NOW) -> InvalidInteraction:
    with pytest.raises(InvalidInteraction) as caught:
        validate(item, now)
    return caught.value


def assert_rejected(item: object, field: str, now: float = NOW) -> str:
    """The item is refused, and the message starts with the field it is about."""
    error = rejection(item, now)
    message = str(error)
    assert message.startswith(field), message
    assert error.field.startswith(field), error.field
    return message


# --- keys, nulls, required fields ----------------------------------------------------------


def test_minimal_interaction_defaults() -> None:
    """Absent strings are "", no properties, event time = receipt time."""
    interaction = validate(valid())
    assert (interaction.action, interaction.user_id) == ("view", "u1")
    assert interaction.created_at == interaction.received_at == NOW
    assert interaction.properties == {}
    assert (interaction.origin_type, interaction.entity_id, interaction.id) == ("", "", "")


def test_keys_match_case_insensitively() -> None:
    item = {
        "ACTION": "view",
        "userId": "u1",
        "usertype": "pro",
        "OriginType": "page",
        "originid": "home",
        "EntityType": "product",
        "ENTITYID": "p1",
        "deviceTYPE": "phone",
        "DeviceId": "d1",
        "SESSIONTYPE": "app",
        "Id": "event-1",
        "TimeStamp": "2026-12-04T10:00:00Z",
        "Properties": {"plan": "pro"},
    }
    interaction = validate(item)
    assert interaction.user == ("pro", "u1")
    assert interaction.endpoint == ("view", "product", "p1", "page", "home")
    assert (interaction.device_type, interaction.device_id) == ("phone", "d1")
    assert (interaction.session_type, interaction.id) == ("app", "event-1")
    assert interaction.created_at == at("2026-12-04T10:00:00+00:00")
    assert interaction.properties == {"plan": "pro"}


def test_unknown_keys_are_ignored() -> None:
    interaction = validate(valid(sessionID="old", extra={"nested": [1, {"x": 2}]}, colour=5))
    assert interaction.action == "view"
    assert not hasattr(interaction, "extra")


def test_null_means_absent() -> None:
    item = valid(originType=None, timestamp=None, properties=None, id=None, entityID=None)
    interaction = validate(item)
    assert interaction.origin_type == ""
    assert interaction.created_at == NOW
    assert interaction.properties == {}


@pytest.mark.parametrize("field", ["action", "userID"])
@pytest.mark.parametrize("value", ["missing", None, ""])
def test_required_fields(field: str, value: object) -> None:
    """action and userID: required, non-empty; null is the same as missing."""
    item = valid()
    if value == "missing":
        del item[field]
    else:
        item[field] = value
    assert_rejected(item, field)


@pytest.mark.parametrize("body", [[], "view", 5, None, True, [{"action": "view"}]])
def test_body_must_be_an_object(body: object) -> None:
    assert_rejected(body, "body")


# --- strings -------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "attribute"), STRING_FIELDS.items())
def test_strings_up_to_256_characters(field: str, attribute: str) -> None:
    longest = "é" * 256
    assert getattr(validate(valid(**{field: longest})), attribute) == longest
    message = assert_rejected(valid(**{field: "x" * 257}), field)
    assert "256" in message


@pytest.mark.parametrize("field", STRING_FIELDS)
@pytest.mark.parametrize("value", [5, 1.5, True, ["view"], {"a": "b"}])
def test_wrong_types_name_the_field(field: str, value: object) -> None:
    """``"action": 5`` is a 400 naming ``action`` and the problem."""
    message = assert_rejected(valid(**{field: value}), field)
    assert "string" in message


# --- properties ----------------------------------------------------------------------------


def test_property_values_of_every_allowed_kind() -> None:
    properties = {
        "plan": "pro",
        "amount": 12.5,
        "count": 3,
        "trial": False,
        "tags": ["a", "b"],
        "scores": [1, 2.5, "x"],
        "empty": [],
        "gone": None,
    }
    interaction = validate(valid(properties=properties))
    expected = {key: value for key, value in properties.items() if value is not None}
    assert interaction.properties == expected
    assert interaction.properties["trial"] is False


def test_at_most_100_property_keys() -> None:
    hundred = {f"k{index}": index for index in range(100)}
    assert len(validate(valid(properties=hundred)).properties) == 100
    assert_rejected(valid(properties={**hundred, "one-more": 1}), "properties")


def test_property_keys_are_1_to_128_characters() -> None:
    assert validate(valid(properties={"k" * 128: 1})).properties == {"k" * 128: 1}
    assert_rejected(valid(properties={"k" * 129: 1}), "properties")
    assert_rejected(valid(properties={"": 1}), "properties")


def test_property_strings_up_to_1024_characters() -> None:
    assert validate(valid(properties={"note": "n" * 1024})).properties["note"] == "n" * 1024
    message = assert_rejected(valid(properties={"note": "n" * 1025}), "properties")
    assert "note" in message


def test_arrays_up_to_100_elements() -> None:
    hundred = list(range(100))
    assert validate(valid(properties={"list": hundred})).properties["list"] == hundred
    message = assert_rejected(valid(properties={"list": [*hundred, 100]}), "properties")
    assert "list" in message


@pytest.mark.parametrize(
    "value",
    [
        {"nested": 1},
        [{"nested": 1}],
        [[1, 2]],
        [True],
        [None],
        ["s" * 1025],
        math.nan,
        math.inf,
        -math.inf,
        [math.nan],
    ],
)
def test_other_property_values_are_refused_naming_the_key(value: object) -> None:
    """A nested object, or any other value, is a 400 naming the key."""
    message = assert_rejected(valid(properties={"meta": value}), "properties")
    assert "meta" in message


@pytest.mark.parametrize("value", [[], "plan", 5, True])
def test_properties_must_be_an_object(value: object) -> None:
    assert_rejected(valid(properties=value), "properties")


# --- timestamps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-12-04T10:00:00Z", "2026-12-04T10:00:00+00:00"),
        ("2026-12-04T10:00:00+05:30", "2026-12-04T10:00:00+05:30"),
        ("2026-12-04T10:00:00.250-05:00", "2026-12-04T10:00:00.250-05:00"),
        ("2026-12-04t10:00:00z", "2026-12-04T10:00:00+00:00"),
        # No offset: ENGAUGE_TIMEZONE, with its offset of that date (CET, then CEST).
        ("2026-12-04T10:00:00", "2026-12-04T10:00:00+01:00"),
        ("2026-07-04T10:00:00", "2026-07-04T10:00:00+02:00"),
        # A date alone is local midnight.
        ("2026-12-04", "2026-12-04T00:00:00+01:00"),
        ("2026-07-04", "2026-07-04T00:00:00+02:00"),
        # YYYY-MM-DD HH:MM[:SS[.fff]]
        ("2026-12-04 10:00", "2026-12-04T10:00:00+01:00"),
        ("2026-12-04 10:00:30", "2026-12-04T10:00:30+01:00"),
        ("2026-12-04 10:00:30.125", "2026-12-04T10:00:30.125+01:00"),
        # RFC 1123
        ("Fri, 04 Dec 2026 10:00:00 GMT", "2026-12-04T10:00:00+00:00"),
        ("Fri, 04 Dec 2026 10:00:00 +0200", "2026-12-04T10:00:00+02:00"),
        ("Fri, 04 Dec 2026 10:00:00 -0500", "2026-12-04T10:00:00-05:00"),
        ("Fri, 04 Dec 2026 10:00:00 +0000", "2026-12-04T10:00:00+00:00"),
        ("Fri, 04 Dec 2026 10:00:00 -0000", "2026-12-04T10:00:00+00:00"),
        # Surrounding blanks are not part of the date.
        ("  2026-12-04T10:00:00Z ", "2026-12-04T10:00:00+00:00"),
    ],
)
def test_timestamp_strings(timestamp: str, expected: str) -> None:
    assert validate(valid(timestamp=timestamp)).created_at == at(expected)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1764842400, 1764842400.0),
        (1764842400.5, 1764842400.5),
        (1764842400500, 1764842400.5),
        (0, 0.0),
        (100_000_000_001, 100_000_000.001),
        (-86400, -86400.0),
    ],
)
def test_epoch_numbers(timestamp: float, expected: float) -> None:
    """Epoch seconds; milliseconds when above 10^11."""
    assert math.isclose(validate(valid(timestamp=timestamp)).created_at, expected, abs_tol=1e-6)


@pytest.mark.parametrize(
    "timestamp",
    [
        "yesterday",
        "",
        "2026-13-01",
        "2026-02-30",
        "2026-12-04T25:00:00",
        "12/04/2026",
        "04.12.2026",
        "2026/12/04",
        True,
        False,
        [2026, 12, 4],
        {"year": 2026},
        math.nan,
        math.inf,
    ],
)
def test_anything_else_is_refused(timestamp: object) -> None:
    assert_rejected(valid(timestamp=timestamp), "timestamp")


def test_five_minutes_ahead_is_the_limit() -> None:
    """Exactly 5 minutes ahead is accepted; a second more is a 400."""
    assert validate(valid(timestamp=NOW + 300)).created_at == NOW + 300
    message = assert_rejected(valid(timestamp=NOW + 301), "timestamp")
    assert "5 minutes" in message
    assert_rejected(valid(timestamp="2026-12-04T20:06:00Z"), "timestamp")
    assert_rejected(valid(timestamp="2026-12-04T21:06:00+01:00"), "timestamp")
    assert_rejected(valid(timestamp=(NOW + 3600) * 1000), "timestamp")


def test_past_timestamps_of_any_age_are_accepted() -> None:
    """Backfill: a timestamp years old is kept as given."""
    assert validate(valid(timestamp="2001-03-01T10:00:00Z")).created_at == at(
        "2001-03-01T10:00:00+00:00"
    )
    assert validate(valid(timestamp=NOW - 10 * 365 * 86400)).created_at == NOW - 10 * 365 * 86400


@VALIDATION
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2026, 12, 4, 18, 0),
        timezones=st.sampled_from([ZoneInfo("UTC"), BERLIN, ZoneInfo("America/New_York")]),
    )
)
def test_rfc3339_round_trip(moment: datetime) -> None:
    """Any instant written as RFC 3339 with its offset comes back as the same instant."""
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    parsed = validate(valid(timestamp=moment.isoformat())).created_at
    assert math.isclose(parsed, moment.timestamp(), abs_tol=1e-6)


# --- every message names its field ---------------------------------------------------------

REJECTED: list[tuple[object, str]] = [
    ({"userID": "u1"}, "action"),
    ({"action": "view"}, "userID"),
    (valid(action=5), "action"),
    (valid(userId=["u"]), "userID"),
    (valid(originType=False), "originType"),
    (valid(entityId="e" * 300), "entityID"),
    (valid(sessionType=1), "sessionType"),
    (valid(id=7), "id"),
    (valid(timestamp="soon"), "timestamp"),
    (valid(timestamp=NOW + 600), "timestamp"),
    (valid(properties="x"), "properties"),
    (valid(properties={"a": {"b": 1}}), "properties"),
    ("not an object", "body"),
]


@pytest.mark.parametrize(("item", "field"), REJECTED)
def test_every_message_starts_with_the_field(item: object, field: str) -> None:
    message = str(rejection(item))
    assert message.startswith(field), message
    assert len(message) > len(field) + 2, "the message also says what is wrong"
