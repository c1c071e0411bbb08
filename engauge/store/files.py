"""Small JSON files in the base path, written atomically (temp file, fsync, rename)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old or the new file, never half."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """``fsync`` a directory, so that a file created or renamed in it survives power loss."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path) -> Any:
    """The decoded file, or ``None`` when it does not exist."""
    try:
        return msgspec.json.decode(path.read_bytes())
    except FileNotFoundError:
        return None


def write_json(path: Path, value: Any) -> None:
    write_atomically(path, msgspec.json.format(msgspec.json.encode(value)) + b"\n")
