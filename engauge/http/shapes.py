"""The JSON bodies of the HTTP API, as typed dictionaries.

The handlers are annotated with these types and the API reference (``GET /openapi.json``)
is generated from them; the statistics inside come from :mod:`engauge.stream.shapes`.
Input constraints (lengths, counts) are the validator's own constants, so the document
states the limits the server enforces.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from msgspec import Meta

from engauge.stream.settings import MAX_RETENTION
from engauge.stream.shapes import (
    Identity,
    ProfileFigures,
    ProfileJson,
    PropertyJson,
    SummaryFigures,
    SummaryStats,
)
from engauge.stream.validation import (
    MAX_ARRAY,
    MAX_PROPERTIES,
    MAX_PROPERTY_NAME,
    MAX_PROPERTY_STRING,
    MAX_STRING,
)

Label = Annotated[str, Meta(max_length=MAX_STRING)]
Required = Annotated[str, Meta(min_length=1, max_length=MAX_STRING)]
Text = Annotated[str, Meta(max_length=MAX_PROPERTY_STRING)]
Number = Annotated[float, Meta(description="finite; a whole number within ±2^63")]
PropertyName = Annotated[str, Meta(min_length=1, max_length=MAX_PROPERTY_NAME)]
PropertyValue = (
    Text | Number | bool | Annotated[list[Text | Number], Meta(max_length=MAX_ARRAY)] | None
)
Timestamp = Annotated[
    str | float,
    Meta(
        description="RFC 3339 / ISO 8601 (a time without zone is in ENGAUGE_TIMEZONE), "
        "RFC 1123, or Unix seconds or milliseconds; at most 5 minutes ahead of the server"
    ),
]


class InteractionIn(TypedDict):
    """One interaction (SPEC §1). Keys match case-insensitively, unknown keys are ignored
    and ``null`` means absent; ``action`` and ``userID`` are required and not empty."""

    action: Required
    userID: Required
    entityType: NotRequired[Label | None]
    entityID: NotRequired[Label | None]
    originType: NotRequired[Label | None]
    originID: NotRequired[Label | None]
    userType: NotRequired[Label | None]
    deviceType: NotRequired[Label | None]
    deviceID: NotRequired[Label | None]
    sessionType: NotRequired[Label | None]
    id: NotRequired[
        Annotated[
            Label | None,
            Meta(description="set it to make retries safe: a repeated id within 24 h counts once"),
        ]
    ]
    timestamp: NotRequired[Timestamp | None]
    properties: NotRequired[
        Annotated[dict[PropertyName, PropertyValue], Meta(max_length=MAX_PROPERTIES)] | None
    ]


Object = dict[str, Any]
UserId = Label | float
"""SDKs may send a number as a user id; it counts as its text."""
BodyKey = Annotated[Any, Meta(description="the key, read only when no header carries one")]


class SegmentFields(TypedDict):
    """What Engauge reads of a Segment message; nested properties become dotted keys."""

    event: NotRequired[Label]
    name: NotRequired[Label]
    userId: NotRequired[UserId | None]
    anonymousId: NotRequired[UserId | None]
    messageId: NotRequired[Label]
    timestamp: NotRequired[Timestamp]
    properties: NotRequired[Object]
    traits: NotRequired[Object]
    context: NotRequired[Object]


class SegmentMessage(SegmentFields):
    """A message of a batch: ``track`` → ``event``; ``page`` and ``screen`` → ``view``
    with the page's path or the screen's name as origin; ``identify`` → ``identify``."""

    type: Literal["track", "page", "screen", "identify"]


class SegmentSingle(SegmentFields):
    """One message; the route says its type. The key may come as ``writeKey``."""

    writeKey: NotRequired[BodyKey]
    sentAt: NotRequired[Timestamp]


class SegmentBatch(TypedDict):
    batch: list[SegmentMessage]
    writeKey: NotRequired[BodyKey]
    sentAt: NotRequired[Timestamp]


class PostHogEvent(TypedDict):
    """A PostHog event: ``$pageview`` and ``$screen`` → ``view``, ``$identify`` →
    ``identify``; ``$current_url``'s path or ``$screen_name`` is the origin; properties
    starting with ``$`` are PostHog's own and are not kept."""

    event: Label
    distinct_id: NotRequired[UserId]
    uuid: NotRequired[Label]
    timestamp: NotRequired[Timestamp]
    properties: NotRequired[Object]


class PostHogCapture(TypedDict):
    """One event (its fields at the top level) or ``batch``; the key may come as
    ``api_key`` or ``token``."""

    batch: NotRequired[list[PostHogEvent]]
    event: NotRequired[Label]
    distinct_id: NotRequired[UserId]
    uuid: NotRequired[Label]
    timestamp: NotRequired[Timestamp]
    properties: NotRequired[Object]
    api_key: NotRequired[BodyKey]
    token: NotRequired[BodyKey]
    sent_at: NotRequired[Timestamp]


class Rejected(TypedDict):
    """An item of a batch that was refused: its position and what is wrong with it."""

    index: int
    message: str


class Accepted(TypedDict):
    accepted: int
    rejected: NotRequired[list[Rejected]]


class SegmentAnswer(Accepted):
    success: bool


class PostHogAnswer(Accepted):
    status: int


class PostHogFlags(TypedDict):
    """No feature flags: so PostHog's SDKs find none and log no error."""

    featureFlags: dict[str, bool]
    featureFlagPayloads: dict[str, str]
    flags: dict[str, bool]
    errorsWhileComputingFlags: bool


class Message(TypedDict):
    """Every error, and a few plain answers: what happened and what to do."""

    message: str
    rejected: NotRequired[list[Rejected]]


class Credentials(TypedDict):
    username: str
    password: str


class Token(TypedDict):
    """A token also set as the ``token`` cookie; ``tokenExpiry`` is its lifetime in seconds."""

    token: str
    tokenExpiry: int


class Readiness(TypedDict):
    ready: bool
    reason: NotRequired[str]


class Bounds(TypedDict):
    """Which bucket: ``start`` and ``end`` are ``null`` for ``allTime``."""

    id: str
    interval: str
    start: str | None
    end: str | None


class Summary(Bounds, SummaryStats):
    """One bucket of one interval, every figure."""


class CurrentFigures(Bounds, SummaryFigures):
    """The numbers of one current bucket: an item of the live stream's ``summary`` event."""


SeriesPoint = dict[str, str | float | None]
"""``start`` and one value per requested metric."""


class Series(TypedDict):
    interval: str
    points: list[SeriesPoint]


class ProfileRow(Identity, ProfileFigures):
    """An endpoint, origin or entity in a list: its identity and all-time numbers."""


class ProfileAt(Bounds, ProfileJson):
    """A profile in the bucket of one interval."""


class ProfileDetail(Identity):
    stats: dict[str, ProfileAt]


class PropertyRow(TypedDict):
    id: str
    name: str
    types: list[str]
    total: int


class PropertyDetail(TypedDict):
    """A property all-time (``stats``) and in the bucket of each enabled interval
    (``null`` where that bucket has none)."""

    id: str
    types: list[str]
    stats: PropertyJson
    hourlyStats: NotRequired[PropertyJson | None]
    dailyStats: NotRequired[PropertyJson | None]
    weeklyStats: NotRequired[PropertyJson | None]
    monthlyStats: NotRequired[PropertyJson | None]
    quarterlyStats: NotRequired[PropertyJson | None]
    yearlyStats: NotRequired[PropertyJson | None]


class TogglesPatch(TypedDict, total=False):
    hourly: bool
    daily: bool
    weekly: bool
    monthly: bool
    quarterly: bool
    yearly: bool


Kept = Annotated[int, Meta(ge=1, le=MAX_RETENTION)]


class RetentionPatch(TypedDict, total=False):
    hourly: Kept
    daily: Kept
    weekly: Kept
    monthly: Kept
    quarterly: Kept
    yearly: Kept
    interactions: Kept


class SettingsPatch(TypedDict, total=False):
    """Any part of the settings; what is left out keeps its value."""

    statsToggles: TogglesPatch
    interactions: bool
    retention: RetentionPatch


class Erasure(TypedDict):
    userID: str
    userType: str
    archivedInteractionsRemoved: int
    openSessionEnded: bool
    export: str
