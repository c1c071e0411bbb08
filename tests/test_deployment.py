"""The container image and the systemd unit: built and run where a Docker engine is."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def docker_engine() -> str | None:
    """Why there is no usable Docker engine, or ``None``."""
    if shutil.which("docker") is None:
        return "no docker command"
    probe = subprocess.run(
        ["docker", "info"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        lines = (probe.stderr or probe.stdout).strip().splitlines()
        return f"docker info failed: {lines[-1] if lines else probe.returncode}"
    return None


def test_the_image_runs_as_a_user_with_a_volume_and_a_health_check() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert "USER engauge" in lines
    assert "VOLUME /data" in lines
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "/health/ready" in (ROOT / "Dockerfile").read_text()
    unit = (ROOT / "docs" / "engauge.service").read_text()
    assert "ExecStart=" in unit and "User=engauge" in unit


def test_the_image_builds_and_serves() -> None:
    reason = docker_engine()
    if reason is not None:
        pytest.skip(f"needs a Docker engine: {reason}")
    tag = f"engauge-test:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=900)
    container = subprocess.run(
        ["docker", "run", "-d", "-p", "127.0.0.1::8080", tag],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    try:
        port = subprocess.run(
            ["docker", "port", container, "8080"], capture_output=True, text=True, check=True
        ).stdout.strip().rsplit(":", 1)[1]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.read() == b"alive"
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the container did not answer /health within 60 s")
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
