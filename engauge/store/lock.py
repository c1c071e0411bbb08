"""One Engauge per base path: an exclusive lock held for as long as the process runs."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "lock"


class BasePathInUse(OSError):
    """Another process (a server or an import) is using this base path."""


def lock_base_path(basepath: Path) -> int:
    """Take the lock or raise :class:`BasePathInUse`; the lock goes with the process."""
    basepath.mkdir(parents=True, exist_ok=True)
    fd = os.open(basepath / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BasePathInUse(f"{basepath} is in use by another Engauge process") from None
    return fd
