"""Segment- and PostHog-compatible ingestion: their SDKs' messages as Engauge interactions.

Each function turns a decoded request body into interaction objects of SPEC §1, which then
go through the same validation and journal as ``/api/interactions``. A message that cannot
be mapped becomes a :class:`Refused` item, rejected by index like an invalid interaction.

Segment (``/v1/batch``, ``/v1/track``, ``/v1/page``, ``/v1/screen``, ``/v1/identify``):
``event`` (track) or ``view`` (page, screen) → ``action``; ``identify`` → action ``identify``
with the traits as properties (no users are merged); ``userId``, else ``anonymousId`` with
``userType`` ``anonymous`` → ``userID``; ``context.page.path`` (or ``properties.path``, or the
page's ``name``) → origin ``page``; a screen's ``name`` → origin ``screen``;
``context.device.type`` → ``deviceType``; ``messageId`` → ``id``; ``timestamp`` → timestamp;
``properties`` flattened with dotted keys.

PostHog (``/batch/``, ``/capture/``, ``/e/``, ``/i/v0/e/``): ``event`` → ``action``
(``$pageview`` and ``$screen`` → ``view``, ``$identify`` → ``identify``); ``distinct_id`` →
``userID``; ``uuid`` → ``id``; ``properties.$current_url``'s path → origin ``page``;
``properties.$screen_name`` → origin ``screen``; ``properties.$device_type`` → ``deviceType``;
every other ``$`` property is dropped; the rest are flattened like Segment's.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any
from urllib.parse import urlsplit

import msgspec

from engauge.http.errors import Refused
from engauge.stream.timestamps import TimestampError, parse_timestamp

SEGMENT_SINGLE = {
    "/v1/track": "track",
    "/v1/page": "page",
    "/v1/screen": "screen",
    "/v1/identify": "identify",
}
SEGMENT_PATHS = frozenset({"/v1/batch", *SEGMENT_SINGLE})
POSTHOG_PATHS = frozenset({"/batch", "/capture", "/e", "/i/v0/e"})
POSTHOG_FLAG_PATHS = frozenset({"/flags", "/decide"})
NO_FLAGS = {
    "featureFlags": {},
    "featureFlagPayloads": {},
    "flags": {},
    "errorsWhileComputingFlags": False,
}
POSTHOG_ACTIONS = {"$pageview": "view", "$screen": "view", "$identify": "identify"}
FLATTEN_DEPTH = 5


class Collision(ValueError):
    """Two properties flatten to one key (``{"a.b": 1, "a": {"b": 2}}``)."""


def flatten(properties: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Nested objects as dotted keys (``{"a": {"b": 1}}`` → ``{"a.b": 1}``); ``null`` dropped.

    An array of objects (Segment's ``products``) becomes one array per key
    (``products.price``). Objects nested deeper than FLATTEN_DEPTH are kept as they are, so
    validation names them. Raises :class:`Collision` when two keys would become one.
    """
    flat: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        if name in flat:
            raise Collision(name)
        flat[name] = value

    for key, value in properties.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < FLATTEN_DEPTH:
            for inner, inner_value in flatten(value, f"{name}.", depth + 1).items():
                put(inner, inner_value)
        elif isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
            columns: dict[str, list[Any]] = {}
            for element in value:
                for inner, inner_value in flatten(element, "", depth + 1).items():
                    columns.setdefault(inner, []).append(inner_value)
            for inner, values in columns.items():
                put(f"{name}.{inner}", values)
        elif value is not None:
            put(name, value)
    return flat


def _properties(message: dict[str, Any], field: str, keep: Any = None) -> dict[str, Any] | Refused:
    """The message's ``field`` flattened, or why it cannot be; ``keep`` filters the keys."""
    given = message.get(field)
    if given is None:
        return {}
    if not isinstance(given, dict):
        return Refused(f"{field}: must be an object")
    if keep is not None:
        given = {key: value for key, value in given.items() if keep(key)}
    try:
        return flatten(given)
    except Collision as error:
        return Refused(f"{field}.{error}: given twice, as a dotted key and as a nested object")


class _Keys(msgspec.Struct):
    writeKey: str | None = None  # noqa: N815 - Segment's name
    api_key: str | None = None
    token: str | None = None


def body_key(body: bytes) -> str | None:
    """The key a Segment or PostHog body carries (``writeKey``, ``api_key`` or ``token``).

    Read without building the body's objects, so a request without a valid key costs
    little however large its body.
    """
    try:
        keys = msgspec.json.decode(body, type=_Keys)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None  # no key found: the request is refused as unauthorised
    return keys.writeKey or keys.api_key or keys.token


def sent_time(timestamp: object, sent_at: object, now: float, zone: tzinfo) -> object:
    """``timestamp`` corrected for the client's clock, as both SDKs expect: the time between
    the event and ``sentAt`` taken back from the moment the request arrived."""
    if timestamp is None or sent_at is None:
        return timestamp
    try:
        happened = parse_timestamp(timestamp, zone)
        sent = parse_timestamp(sent_at, zone)
    except (TimestampError, TypeError):
        return timestamp  # validation names what is wrong with it
    return now - max(0.0, sent - happened)


def _dig(message: dict[str, Any], *path: str) -> Any:
    value: Any = message
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value not in (None, "", {})}


# -- Segment ---------------------------------------------------------------------------------


def segment_messages(body: object, path: str, now: float, zone: tzinfo) -> list[object]:
    """The messages of a Segment request: ``batch`` for ``/v1/batch``, else the body itself."""
    if not isinstance(body, dict):
        return [Refused("body: must be a JSON object")]
    sent_at = body.get("sentAt")
    if path == "/v1/batch":
        batch = body.get("batch")
        if not isinstance(batch, list):
            return [Refused("batch: must be an array of messages")]
        return [segment_interaction(message, sent_at, now, zone) for message in batch]
    message = {**body, "type": SEGMENT_SINGLE[path]}  # the route says what it is
    return [segment_interaction(message, sent_at, now, zone)]


def segment_interaction(message: object, sent_at: object, now: float, zone: tzinfo) -> object:
    if not isinstance(message, dict):
        return Refused("must be a JSON object")
    kind = message.get("type")
    name = message.get("name")
    origin: tuple[str, Any] | tuple[None, None] = (None, None)
    if kind == "track":
        action = message.get("event")
    elif kind == "page":
        action = "view"
        path = _dig(message, "context", "page", "path") or _dig(message, "properties", "path")
        origin = ("page", path or name)
    elif kind == "screen":
        action, origin = "view", ("screen", name)
    elif kind == "identify":
        action = "identify"
    else:
        return Refused(
            f"type: {kind!r} is not taken; Engauge takes track, page, screen and identify "
            "(it never merges users, so alias and group are refused)"
        )
    user_id = _identity(message.get("userId"))
    anonymous = user_id in (None, "")
    properties = _properties(message, "traits" if kind == "identify" else "properties")
    if isinstance(properties, Refused):
        return properties
    return _present(
        {
            "action": action,
            "userID": _identity(message.get("anonymousId")) if anonymous else user_id,
            "userType": "anonymous" if anonymous else None,
            "originType": origin[0],
            "originID": origin[1],
            "deviceType": _dig(message, "context", "device", "type"),
            "timestamp": sent_time(message.get("timestamp"), sent_at, now, zone),
            "id": message.get("messageId"),
            "properties": properties,
        }
    )


def _identity(value: object) -> object:
    """A user id as the SDKs allow it: numbers as their text, booleans left to validation."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


# -- PostHog ---------------------------------------------------------------------------------


def posthog_messages(body: object, path: str, now: float, zone: tzinfo) -> list[object]:
    """The events of a PostHog request: ``batch`` when present, else the body itself."""
    if not isinstance(body, dict):
        return [Refused("body: must be a JSON object")]
    sent_at = body.get("sent_at")
    batch = body.get("batch")
    if batch is None:
        return [posthog_interaction(body, sent_at, now, zone)]
    if not isinstance(batch, list):
        return [Refused("batch: must be an array of events")]
    return [posthog_interaction(event, sent_at, now, zone) for event in batch]


def posthog_interaction(event: object, sent_at: object, now: float, zone: tzinfo) -> object:
    if not isinstance(event, dict):
        return Refused("must be a JSON object")
    name = event.get("event")
    own = _properties(event, "properties", keep=_own_property)
    if isinstance(own, Refused):
        return own
    given = event.get("properties") or {}
    origin: tuple[str | None, Any] = (None, None)
    url = given.get("$current_url")
    if isinstance(url, str) and url:
        try:
            origin = ("page", urlsplit(url).path or "/")
        except ValueError:
            return Refused(f"properties.$current_url: {url[:100]!r} is not a URL")
    elif given.get("$screen_name"):
        origin = ("screen", given["$screen_name"])
    device = given.get("$device_type")
    user = event.get("distinct_id")
    return _present(
        {
            "action": POSTHOG_ACTIONS.get(name, name) if isinstance(name, str) else name,
            "userID": _identity(given.get("distinct_id") if user is None else user),
            "originType": origin[0],
            "originID": origin[1],
            "deviceType": device.lower() if isinstance(device, str) else device,
            "timestamp": sent_time(event.get("timestamp"), sent_at, now, zone),
            "id": event.get("uuid"),
            "properties": own,
        }
    )


def _own_property(name: object) -> bool:
    """The event's own properties: not PostHog's ``$`` ones, not the id and key again."""
    return not str(name).startswith("$") and name not in ("distinct_id", "token")
