"""The installed dependencies against the Python Packaging Advisory Database (pip-audit).

The audit reads PyPI's per-release vulnerability data over the network. Where that service
answers for none of the packages (an offline machine, or a mirror without it), the test says
so and skips; a known vulnerability in any package it could audit fails it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

AUDIT_SECONDS = 300


def test_no_installed_dependency_has_a_known_vulnerability() -> None:
    audit = subprocess.run(
        [str(Path(sys.executable).parent / "pip-audit"), "--progress-spinner", "off", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=AUDIT_SECONDS,
        check=False,
    )
    try:
        report = json.loads(audit.stdout)
    except json.JSONDecodeError:
        pytest.skip(f"pip-audit could not reach its vulnerability service: {audit.stderr[-300:]}")
    packages = report["dependencies"]
    audited = [package for package in packages if "skip_reason" not in package]
    vulnerable = {
        f"{package['name']} {package['version']}": [v["id"] for v in package["vulns"]]
        for package in audited
        if package["vulns"]
    }
    assert not vulnerable, f"known vulnerabilities; upgrade these: {vulnerable}"
    if not audited:
        pytest.skip(
            f"the vulnerability service answered for none of the {len(packages)} packages "
            "(PyPI's per-release data is unreachable from this network)"
        )
