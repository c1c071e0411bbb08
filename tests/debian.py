"""Debian programs the tests and benchmarks drive: Chromium (through Playwright), wrk and
redis-server.

When a program is missing, the set-up installs its package with ``apt-get`` (as root); where
that is impossible the caller skips, giving the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
WRK = Path("/usr/bin/wrk")
REDIS = Path("/usr/bin/redis-server")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_TIMEOUT = 900


def install_chromium() -> str | None:
    """Make sure Chromium is installed; the reason it cannot be, or ``None``."""
    return install("chromium", CHROMIUM)


def install_wrk() -> str | None:
    """Make sure wrk (an HTTP load generator) is installed; why it cannot be, or ``None``."""
    return install("wrk", WRK)


def install_redis() -> str | None:
    """Make sure redis-server (what a cluster runs on) is installed; why it cannot be, or
    ``None``."""
    return install("redis-server", REDIS)


def install(package: str, executable: Path) -> str | None:
    """Install ``package`` unless ``executable`` exists; the reason it cannot be, or ``None``."""
    if executable.exists():
        return None
    if shutil.which("apt-get") is None:
        return f"{package} is not installed and there is no apt-get to install it"
    if os.geteuid() != 0:
        return f"{package} is not installed and installing it with apt-get needs root"
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
    ):
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=environment,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"{' '.join(command)} took longer than {INSTALL_TIMEOUT} s"
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:]
            return f"{' '.join(command)} failed: {' '.join(last)}"
    return None if executable.exists() else f"apt-get installed no {executable}"
