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

from typing import Any
from urllib.parse import urlsplit

from engauge.http.errors import Refused

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


def flatten(properties: object, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Nested objects as dotted keys (``{"a": {"b": 1}}`` → ``{"a.b": 1}``); ``null`` dropped.

    Objects nested deeper than FLATTEN_DEPTH are kept as they are, so validation names them.
    """
    if not isinstance(properties, dict):
        return {}
    flat: dict[str, Any] = {}
    for key, value in properties.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < FLATTEN_DEPTH:
            flat.update(flatten(value, f"{name}.", depth + 1))
        elif value is not None:
            flat[name] = value
    return flat


def _dig(message: dict[str, Any], *path: str) -> Any:
    value: Any = message
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value not in (None, "", {})}


# -- Segment ---------------------------------------------------------------------------------


def segment_messages(body: object, path: str) -> list[object]:
    """The messages of a Segment request: ``batch`` for ``/v1/batch``, else the body itself."""
    if not isinstance(body, dict):
        return [Refused("body: must be a JSON object")]
    if path == "/v1/batch":
        batch = body.get("batch")
        if not isinstance(batch, list):
            return [Refused("batch: must be an array of messages")]
        return [segment_interaction(message) for message in batch]
    return [segment_interaction({"type": SEGMENT_SINGLE[path], **body})]


def segment_interaction(message: object) -> object:
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
    user_id = message.get("userId")
    anonymous = user_id in (None, "")
    properties = message.get("traits") if kind == "identify" else message.get("properties")
    return _present(
        {
            "action": action,
            "userID": message.get("anonymousId") if anonymous else user_id,
            "userType": "anonymous" if anonymous else None,
            "originType": origin[0],
            "originID": origin[1],
            "deviceType": _dig(message, "context", "device", "type"),
            "timestamp": message.get("timestamp"),
            "id": message.get("messageId"),
            "properties": flatten(properties),
        }
    )


def segment_key(body: object) -> str | None:
    """The write key in the body (``writeKey``), when not sent as HTTP Basic user name."""
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) else None


# -- PostHog ---------------------------------------------------------------------------------


def posthog_messages(body: object, path: str) -> list[object]:
    """The events of a PostHog request: ``batch`` when present, else the body itself."""
    if isinstance(body, list):
        return [posthog_interaction(event) for event in body]
    if not isinstance(body, dict):
        return [Refused("body: must be a JSON object")]
    batch = body.get("batch")
    if batch is None:
        return [posthog_interaction(body)]
    if not isinstance(batch, list):
        return [Refused("batch: must be an array of events")]
    return [posthog_interaction(event) for event in batch]


def posthog_interaction(event: object) -> object:
    if not isinstance(event, dict):
        return Refused("must be a JSON object")
    name = event.get("event")
    given = event.get("properties")
    properties: dict[str, Any] = given if isinstance(given, dict) else {}
    user = event.get("distinct_id")
    if user is None:
        user = properties.get("distinct_id")
    origin: tuple[str | None, Any] = (None, None)
    url = properties.get("$current_url")
    if isinstance(url, str) and url:
        origin = ("page", urlsplit(url).path or "/")
    elif properties.get("$screen_name"):
        origin = ("screen", properties["$screen_name"])
    device = properties.get("$device_type")
    own = {key: value for key, value in properties.items() if not str(key).startswith("$")}
    own.pop("distinct_id", None)
    own.pop("token", None)
    return _present(
        {
            "action": POSTHOG_ACTIONS.get(name, name) if isinstance(name, str) else name,
            "userID": str(user) if isinstance(user, int | float) else user,
            "originType": origin[0],
            "originID": origin[1],
            "deviceType": device.lower() if isinstance(device, str) else device,
            "timestamp": event.get("timestamp"),
            "id": event.get("uuid"),
            "properties": flatten(own),
        }
    )


def posthog_key(body: object) -> str | None:
    """The project key in the body: ``api_key`` (or ``token``, as some clients send it)."""
    if not isinstance(body, dict):
        return None
    key = body.get("api_key") or body.get("token")
    if key is None and isinstance(body.get("properties"), dict):
        key = body["properties"].get("token")
    return key if isinstance(key, str) else None
