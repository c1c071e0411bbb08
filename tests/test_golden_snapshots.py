"""Every golden snapshot in ``snapshots/`` still loads and holds exactly the state that the
fixed stream beside it produces: a release never loses the ability to read an older file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from test_stream_model import assert_close, state

from engauge.store import snapshot as snapshots

GOLDEN = Path(__file__).parent.parent / "snapshots"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("golden_generate", GOLDEN / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def golden_files() -> list[Path]:
    return sorted(GOLDEN.glob("format-*.snapshot"))


def test_the_current_format_has_a_golden_file() -> None:
    assert GOLDEN / f"format-{snapshots.FORMAT}.snapshot" in golden_files()


@pytest.mark.parametrize("path", golden_files(), ids=lambda path: path.name)
def test_golden_file_is_written_in_the_format_it_is_named_after(path: Path) -> None:
    """So an older file really exercises the upgrade from its format."""
    _, version, _ = snapshots.HEADER.unpack_from(path.read_bytes())
    assert path.name == f"format-{version}.snapshot"


@pytest.mark.parametrize("path", golden_files(), ids=lambda path: path.name)
def test_golden_snapshot_holds_the_state_of_its_stream(path: Path) -> None:
    golden = generator()
    stored = snapshots.decode(path.read_bytes())
    expected = golden.aggregate(golden.read_stream())
    restored = golden.aggregate([])
    restored.restore(stored.state)
    assert stored.timezone == golden.ZONE
    assert restored.all_time.users.members is None, "the stream should exercise a sketch"
    assert restored.sessions.open == expected.sessions.open
    assert restored.dedup.seen == expected.dedup.seen
    assert_close(state(restored), state(expected), path.name)
