"""The architecture, checked: ``engauge/stream`` is pure and imports no outer layer."""

from __future__ import annotations

import ast
from pathlib import Path

import engauge

PACKAGE = Path(engauge.__file__).parent
FORBIDDEN = (
    "engauge.http",
    "engauge.store",
    "engauge.service",
    "engauge.pipeline",
    "trio",
    "quart",
    "hypercorn",
)
"""What the pure core must never import: outer layers, the event loop, the web framework."""
IMPURE_CALLS = ("time", "os", "socket", "pathlib", "io", "asyncio", "threading")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def stream_modules() -> list[Path]:
    return sorted((PACKAGE / "stream").glob("*.py"))


def test_stream_has_modules() -> None:
    assert len(stream_modules()) >= 8


def test_stream_imports_no_outer_layer_or_event_loop() -> None:
    offenders = {
        f"{path.name}: {module}"
        for path in stream_modules()
        for module in imported_modules(path)
        if any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN)
    }
    assert not offenders


def test_stream_does_no_io_and_reads_no_clock() -> None:
    offenders = {
        f"{path.name}: {module}"
        for path in stream_modules()
        for module in imported_modules(path)
        if module.split(".")[0] in IMPURE_CALLS
    }
    assert not offenders


def test_store_does_not_import_http() -> None:
    offenders = {
        f"{path.name}: {module}"
        for path in sorted((PACKAGE / "store").glob("*.py"))
        for module in imported_modules(path)
        if module.startswith(("engauge.http", "quart", "hypercorn"))
    }
    assert not offenders


def test_cluster_parts_do_not_import_http() -> None:
    """The cluster's log, owner and view sit beside the store; only the node wiring
    (like ``engauge.service``) puts them behind the HTTP application."""
    offenders = {
        f"{path.name}: {module}"
        for path in sorted((PACKAGE / "cluster").glob("*.py"))
        if path.name != "node.py"
        for module in imported_modules(path)
        if module.startswith(("engauge.http", "quart", "hypercorn"))
    }
    assert not offenders
