"""Turning a decoded JSON object into an :class:`Interaction`, or a message naming the field.

Keys match case-insensitively (``userId`` fills ``userID``); unknown keys are ignored;
``null`` means absent. Every rejection is an :class:`InvalidInteraction` whose text starts
with the field it is about, so an API client can act on it.
"""

from __future__ import annotations

import math
from datetime import tzinfo
from typing import Any

from engauge.stream.interaction import Interaction, PropertyValue
from engauge.stream.timestamps import TimestampError, parse_timestamp

MAX_STRING = 256
MAX_PROPERTIES = 100
MAX_PROPERTY_NAME = 128
MAX_PROPERTY_STRING = 1024
MAX_ARRAY = 100
MAX_FUTURE_SECONDS = 300.0

STRING_FIELDS: dict[str, str] = {
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
"""Public string field name → attribute of :class:`Interaction`."""

FIELDS = (*STRING_FIELDS, "timestamp", "properties")
REQUIRED = ("action", "userID")

_CANONICAL: dict[str, str] = {name.lower(): name for name in FIELDS}


class InvalidInteraction(ValueError):
    """An interaction was rejected; ``field`` names the offending key."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def canonical_fields(item: dict[str, Any]) -> dict[str, Any]:
    """Map the item's keys onto the public field names, ignoring unknown keys and nulls."""
    fields: dict[str, Any] = {}
    for key, value in item.items():
        name = _CANONICAL.get(key.lower())
        if name is None or value is None:
            continue
        if name in fields:
            raise InvalidInteraction(name, f"given twice (as {key!r} and another spelling)")
        fields[name] = value
    return fields


def validate_interaction(item: object, *, now: float, zone: tzinfo) -> Interaction:
    """Validate one decoded JSON value against SPEC §1 and return the interaction.

    ``now`` is the receipt time: it becomes ``received_at``, the default ``created_at``,
    and the reference for the five-minutes-ahead limit on ``timestamp``.
    """
    if not isinstance(item, dict):
        raise InvalidInteraction("body", f"must be a JSON object, got {_json_type(item)}")
    fields = canonical_fields(item)
    values: dict[str, Any] = {}
    for name, attribute in STRING_FIELDS.items():
        value = fields.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInteraction(name, f"must be a string, got {_json_type(value)}")
        if len(value) > MAX_STRING:
            raise InvalidInteraction(name, f"is longer than {MAX_STRING} characters")
        values[attribute] = value
    for name in REQUIRED:
        if not values.get(STRING_FIELDS[name]):
            problem = "must not be empty" if name in fields else "is required"
            raise InvalidInteraction(name, problem)
    created_at = _created_at(fields.get("timestamp"), now, zone)
    if "properties" in fields:
        values["properties"] = validate_properties(fields["properties"])
    return Interaction(created_at=created_at, received_at=now, **values)


def _created_at(value: object, now: float, zone: tzinfo) -> float:
    if value is None:
        return now
    try:
        created_at = parse_timestamp(value, zone)
    except TimestampError as error:
        raise InvalidInteraction("timestamp", str(error)) from None
    if created_at > now + MAX_FUTURE_SECONDS:
        raise InvalidInteraction(
            "timestamp",
            "is more than 5 minutes ahead of the server clock; check the client's clock",
        )
    return created_at


def validate_properties(value: object) -> dict[str, PropertyValue]:
    """Check the ``properties`` object; ``null`` values are dropped."""
    if not isinstance(value, dict):
        raise InvalidInteraction("properties", f"must be an object, got {_json_type(value)}")
    if len(value) > MAX_PROPERTIES:
        raise InvalidInteraction("properties", f"has more than {MAX_PROPERTIES} keys")
    properties: dict[str, PropertyValue] = {}
    for key, item in value.items():
        if not 1 <= len(key) <= MAX_PROPERTY_NAME:
            raise InvalidInteraction(
                "properties", f"key {key[:40]!r} must be 1 to {MAX_PROPERTY_NAME} characters"
            )
        if item is not None:
            properties[key] = _property_value(key, item)
    return properties


def _property_value(key: str, value: object) -> PropertyValue:
    field = f"properties.{key}"
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_PROPERTY_STRING:
            raise InvalidInteraction(field, f"is longer than {MAX_PROPERTY_STRING} characters")
        return value
    if isinstance(value, int | float):
        return _finite(field, value)
    if isinstance(value, list):
        if len(value) > MAX_ARRAY:
            raise InvalidInteraction(field, f"has more than {MAX_ARRAY} elements")
        return [_array_element(field, element) for element in value]
    raise InvalidInteraction(
        field, f"must be a string, number, boolean or array, got {_json_type(value)}"
    )


def _array_element(field: str, value: object) -> str | int | float:
    if isinstance(value, str) and not isinstance(value, bool):
        if len(value) > MAX_PROPERTY_STRING:
            raise InvalidInteraction(field, f"has an element longer than {MAX_PROPERTY_STRING}")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _finite(field, value)
    raise InvalidInteraction(
        field, f"array elements must be strings or numbers, got {_json_type(value)}"
    )


def _finite(field: str, value: float) -> int | float:
    try:
        finite = math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite or (isinstance(value, int) and abs(value) > 2**63):
        raise InvalidInteraction(field, "must be a finite number within ±2^63")
    return value
