"""JSON renderings of buckets and profiles (SPEC §5), with every ratio derived on read.

No rendering contains NaN or Infinity: an undefined ratio is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from engauge.stream.bucket import Bucket, Conversions, Profile, PropertyStats, SessionGroup
from engauge.stream.interaction import key_id
from engauge.stream.shapes import (
    ConversionsJson,
    Identity,
    ProfileFigures,
    ProfileJson,
    PropertyJson,
    Ratio,
    SessionGroupJson,
    SummaryFigures,
    SummaryStats,
)


def ratio(numerator: float, denominator: float) -> Ratio:
    return numerator / denominator if denominator else None


def conversions_json(conversions: Conversions) -> ConversionsJson:
    return {
        "count": conversions.count,
        "revenue": conversions.revenue,
        "amount": conversions.amount.to_json(),
    }


def property_json(stats: PropertyStats) -> PropertyJson:
    return {
        "count": stats.count,
        "numbers": stats.numbers.to_json(),
        "values": stats.values.to_json(),
    }


def properties_json(properties: dict[str, PropertyStats]) -> dict[str, PropertyJson]:
    return {name: property_json(stats) for name, stats in sorted(properties.items())}


def summary_figures(bucket: Bucket) -> SummaryFigures:
    """The numeric part of a summary: what charts plot and what the live stream sends."""
    users = bucket.users.count()
    revenue = bucket.conversions.revenue
    conversions = bucket.conversions.count
    completed = bucket.completed
    return {
        "total": bucket.total,
        "users": users,
        "sessions": {
            "started": bucket.started,
            "completed": completed,
            "late": bucket.late,
            "bounced": bucket.bounced,
            "bounceRate": ratio(bucket.bounced, completed),
            "converted": bucket.converted,
            "conversionRate": ratio(bucket.converted, completed),
            "duration": bucket.duration.to_json(),
            "interactions": bucket.session_interactions.to_json(),
        },
        "conversions": conversions_json(bucket.conversions),
        "unitMetrics": {
            "revenuePerUser": ratio(revenue, users),
            "revenuePerSession": ratio(revenue, bucket.started),
            "revenuePerConversion": ratio(revenue, conversions),
            "conversionsPerUser": ratio(conversions, users),
        },
    }


def summary_json(bucket: Bucket) -> SummaryStats:
    """Every figure of a summary, breakdowns included (without id and bounds)."""
    return {
        **summary_figures(bucket),
        "actionStats": bucket.actions.to_json(),
        "originTypeStats": bucket.origin_types.to_json(),
        "entityTypeStats": bucket.entity_types.to_json(),
        "userTypeStats": bucket.user_types.to_json(),
        "deviceTypeStats": bucket.device_types.to_json(),
        "sessionTypeStats": bucket.session_types.to_json(),
        "sessionStats": _session_stats(bucket),
        "conversionStats": [
            {"endpoint": identity_json("endpoint", key)["id"], **conversions_json(value)}
            for key, value in sorted(
                bucket.conversion_endpoints.items(), key=lambda item: -item[1].count
            )
        ],
    }


def _session_stats(bucket: Bucket) -> list[SessionGroupJson]:
    groups = sorted(bucket.session_groups.items(), key=lambda item: (-item[1].count, item[0] or ()))
    return [_session_group(key, group, bucket.completed) for key, group in groups]


def _session_group(
    key: tuple[str, str, str] | None, group: SessionGroup, completed: int
) -> SessionGroupJson:
    """One group of sessions; ``None`` is every group beyond the cap, shown with null labels."""
    user_type, device_type, session_type = key or (None, None, None)
    return {
        "userType": user_type,
        "deviceType": device_type,
        "sessionType": session_type,
        "count": group.count,
        "percentage": ratio(group.count, completed),
        "bounced": group.bounced,
        "bounceRate": ratio(group.bounced, group.count),
        "converted": group.converted,
        "conversionRate": ratio(group.converted, group.count),
        "duration": group.duration.to_json(),
        "interactions": group.interactions.to_json(),
    }


PROFILE_KINDS = ("endpoint", "origin", "entity")


def profile_figures(kind: str, profile: Profile) -> ProfileFigures:
    """The numeric part of a profile, for lists and charts."""
    figures: ProfileFigures = {
        "total": profile.total,
        "users": profile.users.count(),
        "conversions": conversions_json(profile.conversions),
    }
    if kind == "origin":
        figures["entries"] = profile.entries
        figures["exits"] = profile.exits
        figures["bounces"] = profile.bounces
        figures["bounceRate"] = ratio(profile.bounces, profile.entries)
    return figures


def profile_json(kind: str, profile: Profile) -> ProfileJson:
    """A whole endpoint, origin or entity profile for one bucket."""
    figures = ProfileJson(
        **profile_figures(kind, profile),  # type: ignore[typeddict-item]  # no breakdowns in it
        userTypeStats=profile.user_types.to_json(),
        deviceTypeStats=profile.device_types.to_json(),
        sessionTypeStats=profile.session_types.to_json(),
        propertyStats=properties_json(profile.properties),
    )
    if kind in ("origin", "entity"):
        figures["actionStats"] = profile.actions.to_json()
    if kind == "origin":
        figures["entityTypeStats"] = profile.entity_types.to_json()
    return figures


IDENTITY_FIELDS = {
    "endpoint": ("action", "entityType", "entityID", "originType", "originID"),
    "origin": ("originType", "originID"),
    "entity": ("entityType", "entityID"),
}


def identity_json(kind: str, key: tuple[str, ...] | None) -> Identity:
    """The ``id`` and identity fields of a profile key; ``None`` is the "other" profile."""
    names = IDENTITY_FIELDS[kind]
    if key is None:
        return cast(Identity, {"id": "other", **dict.fromkeys(names)})
    return cast(Identity, {"id": key_id(kind, key), **dict(zip(names, key, strict=True))})


def lookup(figures: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path such as ``sessions.started``; ``KeyError`` if none."""
    value: Any = figures
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(path)
        value = value[part]
    if isinstance(value, Mapping):
        raise KeyError(path)
    return value


def metric_paths(figures: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every dotted path to a number in ``figures``: the metrics a series may ask for."""
    paths: list[str] = []
    for key, value in figures.items():
        if isinstance(value, dict):
            paths.extend(metric_paths(value, f"{prefix}{key}."))
        else:
            paths.append(f"{prefix}{key}")
    return paths
