"""Every fuzz target (``fuzz/``) for a few seconds under atheris: the readers of outside
bytes survive their seeds and what the fuzzer makes of them in that time.

``make fuzz`` runs the same targets for longer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris is not installed: pip install -e '.[test]'")

ROOT = Path(__file__).parent.parent
SECONDS = 3


def test_every_target_runs_clean_for_a_few_seconds(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "fuzz", "--seconds", str(SECONDS), "--artifacts", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.stdout.startswith("{"), run.stderr  # the runner itself did not fail
    results = json.loads(run.stdout)
    targets = sorted(path.name for path in (ROOT / "fuzz" / "corpus").iterdir())
    assert sorted(results) == targets
    failed = {name: result for name, result in results.items() if result["status"] != "ok"}
    assert not failed, f"{failed}\n{run.stderr}"
    assert run.returncode == 0, run.stderr
    assert all(result["executions"] > 0 for result in results.values()), results
