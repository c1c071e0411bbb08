"""Dashboard settings (SPEC §6): interval toggles, raw-interaction keeping, retention.

``apply_patch`` merges a partial JSON object into the current settings and names the
offending key in its error, so ``PUT /dashboard/settings`` can answer ``400`` precisely.
"""

from __future__ import annotations

from typing import Any, cast

from attrs import define, evolve, field

from engauge.stream.calendar import INTERVALS
from engauge.stream.shapes import Retention, SettingsJson, Toggles

DEFAULT_RETENTION: dict[str, int] = {
    "hourly": 72,
    "daily": 400,
    "weekly": 104,
    "monthly": 60,
    "quarterly": 20,
    "yearly": 10,
    "interactions": 365,
}
"""Buckets kept per interval; ``interactions``: days raw interactions are kept for export."""
RAW = "interactions"
MAX_RETENTION = 100_000


class InvalidSettings(ValueError):
    """A settings change was refused; the message starts with the key at fault."""


@define(frozen=True)
class Settings:
    """``stats_toggles`` enables intervals; ``retention`` is buckets kept per interval and
    days of raw interactions kept (``retention["interactions"]``)."""

    stats_toggles: dict[str, bool] = field(factory=lambda: dict.fromkeys(INTERVALS, True))
    interactions: bool = True
    retention: dict[str, int] = field(factory=lambda: dict(DEFAULT_RETENTION))

    def enabled(self) -> tuple[str, ...]:
        return tuple(name for name in INTERVALS if self.stats_toggles[name])

    def to_json(self) -> SettingsJson:
        return {
            "statsToggles": cast(Toggles, dict(self.stats_toggles)),
            "interactions": self.interactions,
            "retention": cast(Retention, dict(self.retention)),
        }


def apply_patch(settings: Settings, patch: object) -> Settings:
    """Return ``settings`` with the partial object ``patch`` merged in, or raise."""
    if not isinstance(patch, dict):
        raise InvalidSettings("body: must be a JSON object")
    unknown = set(patch) - {"statsToggles", "interactions", "retention"}
    if unknown:
        raise InvalidSettings(f"{sorted(unknown)[0]}: unknown setting")
    toggles = _merge_section(settings.stats_toggles, patch, "statsToggles")
    retention = _merge_section(settings.retention, patch, "retention")
    interactions = patch.get("interactions", settings.interactions)
    if not isinstance(interactions, bool):
        raise InvalidSettings("interactions: must be true or false")
    for name, value in toggles.items():
        if not isinstance(value, bool):
            raise InvalidSettings(f"statsToggles.{name}: must be true or false")
    for name, value in retention.items():
        unit = "days" if name == RAW else "buckets"
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSettings(f"retention.{name}: must be a whole number of {unit}")
        if not 1 <= value <= MAX_RETENTION:
            raise InvalidSettings(f"retention.{name}: must be between 1 and {MAX_RETENTION}")
    return evolve(settings, stats_toggles=toggles, interactions=interactions, retention=retention)


def _merge_section(current: dict[str, Any], patch: dict[str, Any], name: str) -> dict[str, Any]:
    """``current`` with the patch's section ``name`` merged in; absent keeps it all."""
    if name not in patch:
        return dict(current)
    section = patch[name]
    if not isinstance(section, dict):
        raise InvalidSettings(f"{name}: must be an object keyed by interval")
    for key in section:
        if key not in current:
            raise InvalidSettings(f"{name}.{key}: unknown key; use one of {', '.join(current)}")
    return {**current, **section}
