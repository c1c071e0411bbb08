"""Dashboard settings persisted in ``settings.json`` so they survive restarts."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec

from engauge.store.files import read_json, write_json
from engauge.stream.settings import InvalidSettings, Settings, apply_patch

SETTINGS_FILE = "settings.json"
log = logging.getLogger("engauge.settings")


def load_settings(basepath: Path) -> Settings:
    """The stored settings merged over the defaults; a damaged file falls back to defaults."""
    try:
        stored = read_json(basepath / SETTINGS_FILE)
        return Settings() if stored is None else apply_patch(Settings(), stored)
    except (InvalidSettings, msgspec.DecodeError) as error:
        log.warning("settings.json ignored: %s", error)
        return Settings()


def save_settings(basepath: Path, settings: Settings) -> None:
    write_json(basepath / SETTINGS_FILE, settings.to_json())
