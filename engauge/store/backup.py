"""Online backup and restore of a base path: the newest snapshot plus the journal after it.

A backup copies, from a base path a server may be writing to, the newest snapshot and then
every journal segment from the one that snapshot points into; a segment retired into the
archive meanwhile is taken from there. Snapshot plus segments is a state the server held:
recovery replays the segments after the snapshot's position and cuts a torn tail, as after a
crash. Settings, secrets and erasures are copied too, so the restored instance has the same
keys and still leaves erased people out. The archive (raw interactions kept only for export)
is not copied.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from attrs import define

from engauge.store.erasures import ERASURES_FILE
from engauge.store.journal import segment_files
from engauge.store.layout import ARCHIVE, JOURNAL, SNAPSHOTS
from engauge.store.secrets import SECRETS_FILE
from engauge.store.settings_file import SETTINGS_FILE
from engauge.store.snapshot import snapshot_files

ATTEMPTS = 3
"""Tries when segments were retired and deleted while being copied (a busy, long copy)."""


class BackupError(Exception):
    """The backup or restore could not be made; the message says what to do."""


@define(frozen=True)
class Copied:
    """What a backup or restore copied."""

    snapshot: str | None
    segments: int
    size: int


def backup(basepath: Path, destination: Path) -> Copied:
    """Copy ``basepath`` (which a server may be using) into the empty ``destination``."""
    if not (basepath / JOURNAL).is_dir():
        raise BackupError(f"{basepath} holds no Engauge data (no {JOURNAL}/ directory)")
    _check_empty(destination)
    for _ in range(ATTEMPTS):
        copied = _copy_once(basepath, destination)
        if copied is not None:
            return copied
        shutil.rmtree(destination)
    raise BackupError("journal segments were retired faster than they could be copied; retry")


def restore(source: Path, basepath: Path) -> Copied:
    """Copy a backup into the empty (or new) base path a stopped server will start from."""
    if not (source / JOURNAL).is_dir():
        raise BackupError(f"{source} is not an Engauge backup (no {JOURNAL}/ directory)")
    _check_empty(basepath)
    basepath.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in (SNAPSHOTS, JOURNAL):
        if (source / name).is_dir():
            shutil.copytree(source / name, basepath / name)
    for name in (SETTINGS_FILE, SECRETS_FILE, ERASURES_FILE):
        if (source / name).exists():
            shutil.copy2(source / name, basepath / name)
    for path in basepath.rglob("*"):
        if path.is_file():
            path.chmod(0o600)
            total += path.stat().st_size
    snapshots = snapshot_files(basepath / SNAPSHOTS)
    return Copied(
        snapshot=snapshots[-1].name if snapshots else None,
        segments=len(segment_files(basepath / JOURNAL)),
        size=total,
    )


def _check_empty(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty; give a new or empty directory")


def _copy_once(basepath: Path, destination: Path) -> Copied | None:
    """One attempt; ``None`` when a needed segment vanished while copying."""
    (destination / SNAPSHOTS).mkdir(parents=True)
    (destination / JOURNAL).mkdir()
    total = 0
    first = 1
    snapshot = None
    newest = snapshot_files(basepath / SNAPSHOTS)[-1:]
    if newest:
        snapshot = newest[0].name
        total += _copy(newest[0], destination / SNAPSHOTS / snapshot)
        first = int(snapshot.split("-", 1)[0])  # the segment its position points into
    copied = []
    for segment in segment_files(basepath / JOURNAL):
        number = int(segment.stem)
        if number < first:
            continue
        size = _copy_from(segment, basepath / ARCHIVE / segment.name, destination / JOURNAL)
        if size is None:
            return None
        total += size
        copied.append(number)
    expected = list(range(first, first + len(copied)))
    if copied != expected:
        return None
    for name in (SETTINGS_FILE, SECRETS_FILE, ERASURES_FILE):
        if (basepath / name).exists():
            total += _copy(basepath / name, destination / name)
    return Copied(snapshot=snapshot, segments=len(copied), size=total)


def _copy(source: Path, target: Path) -> int:
    shutil.copy2(source, target)
    target.chmod(0o600)
    return target.stat().st_size


def _copy_from(segment: Path, archived: Path, directory: Path) -> int | None:
    """A segment from the journal, or from the archive if it was retired meanwhile."""
    for source in (segment, archived):
        try:
            return _copy(source, directory / segment.name)
        except FileNotFoundError:
            continue
    return None
