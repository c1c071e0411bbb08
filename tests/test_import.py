"""``engauge import``: NDJSON and the Go Engauge's CSV, into a stopped or a running instance."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from conftest import APIKEY, EngaugeServer, run_engauge

from engauge.importer import go_time, read_rows
from fuzz.seeds import GO_ROWS


def write_go_directory(root: Path) -> Path:
    directory = root / "interactions"
    directory.mkdir(parents=True)
    with (directory / "2021-3-1.csv").open("w", newline="") as file:
        csv.writer(file, lineterminator="\n").writerows(GO_ROWS)
    return directory


def test_go_csv_directory_into_a_stopped_instance(
    tmp_path: Path, start_server: Callable[..., EngaugeServer]
) -> None:
    basepath = tmp_path / "data"
    directory = write_go_directory(tmp_path)
    first = run_engauge(basepath, "import", str(directory))
    assert first.returncode == 0, first.stderr
    assert "imported 2 interactions; skipped 2 bad rows" in first.stdout
    assert "2021-3-1.csv:3: skipped: '' is not a Go time" in first.stderr
    assert "2021-3-1.csv:4: skipped: has 3 columns" in first.stderr
    again = run_engauge(basepath, "import", str(directory))
    assert "imported before" in again.stderr
    server = start_server(basepath=basepath)
    assert server.total() == 2
    # 2021 is past the daily retention: the rows count in allTime only.
    all_time = server.summary()
    assert all_time["conversions"]["revenue"] == 12.5
    assert all_time["users"] == 2
    assert all_time["sessions"]["started"] == 2
    note = server.get("/dashboard/properties/note")
    assert note["stats"]["values"]["values"][0]["value"] == 'say "hi", twice'


def test_ndjson_into_a_running_instance_reports_bad_lines(
    tmp_path: Path, start_server: Callable[..., EngaugeServer]
) -> None:
    server = start_server()
    source = tmp_path / "events.ndjson"
    lines = [
        json.dumps({"action": "view", "userID": "n1", "timestamp": "2025-05-05T10:00:00Z"}),
        "{not json",
        json.dumps({"action": 5, "userID": "n2"}),
        json.dumps({"action": "view", "userID": "n3"}),
    ]
    source.write_text("\n".join(lines) + "\n")
    done = run_engauge(
        tmp_path / "unused", "import", str(source), "--url", server.url, "--api-key", APIKEY
    )
    assert done.returncode == 0, done.stderr
    assert "imported 2 interactions; skipped 2 bad rows" in done.stdout
    assert "events.ndjson:2: skipped: invalid JSON" in done.stderr
    assert "events.ndjson:3: skipped: action: must be a string" in done.stderr
    assert server.settled_total() == 2


def test_importing_into_a_running_base_path_is_refused(
    tmp_path: Path, start_server: Callable[..., EngaugeServer]
) -> None:
    server = start_server()
    source = tmp_path / "one.ndjson"
    source.write_text(json.dumps({"action": "view", "userID": "x"}) + "\n")
    refused = run_engauge(server.basepath, "import", str(source))
    assert refused.returncode == 2
    assert "in use by another Engauge process" in refused.stderr


def test_go_time_takes_the_numeric_offset_and_nanoseconds() -> None:
    expected = datetime(2026, 12, 4, 19, 54, 36, 925751, tzinfo=UTC).timestamp()
    assert go_time("2026-12-04 14:54:36.925751171 -0500 EST") == expected
    assert (
        go_time("2021-03-01 10:00:00 +0000 UTC m=+0.000")
        == datetime(2021, 3, 1, 10, tzinfo=UTC).timestamp()
    )


def test_undecodable_and_oversized_rows_are_reported_not_fatal(tmp_path: Path) -> None:
    source = tmp_path / "broken.csv"
    good = ",".join(
        ['"view"', *[""] * 5, "u1", *[""] * 5, '"2021-03-01 10:00:00 +0000 UTC"', "", ""]
    )
    source.write_bytes(
        good.encode() + b"\n" + b"\xff\xfe,broken\n" + b'"' + b"x" * 200_000 + b'"\n'
    )
    done = run_engauge(tmp_path / "data", "import", str(source))
    assert done.returncode == 0, done.stderr
    assert "imported 1 interactions" in done.stdout
    assert "broken.csv:2: skipped: has 2 columns" in done.stderr
    assert "unreadable CSV" in done.stderr


def test_properties_nested_too_deeply_are_a_bad_row(tmp_path: Path) -> None:
    """A row the import-csv fuzz target failed on: the JSON decoder's RecursionError
    escaped and stopped the whole import."""
    source = tmp_path / "deep.csv"
    with source.open("w", newline="") as file:
        csv.writer(file, lineterminator="\n").writerows(
            [[*GO_ROWS[0][:14], "[" * 5000], GO_ROWS[0]]
        )
    (_, first, problem, _), (_, second, item, _) = read_rows(source, "engauge-csv")
    assert (first, problem) == (
        1,
        "properties: invalid JSON: maximum recursion depth exceeded while deserializing an object",
    )
    assert second == 2 and isinstance(item, dict)  # the rows after it are still read


def test_the_same_ndjson_sent_twice_counts_once(
    tmp_path: Path, start_server: Callable[..., EngaugeServer]
) -> None:
    server = start_server()
    source = tmp_path / "twice.ndjson"
    source.write_text(json.dumps({"action": "view", "userID": "t1"}) + "\n")
    for _ in range(2):
        done = run_engauge(tmp_path / "unused", "import", str(source), "--url", server.url)
        assert done.returncode == 0, done.stderr
    assert server.settled_total() == 1


def test_an_import_url_must_be_http(tmp_path: Path) -> None:
    rows = tmp_path / "rows.ndjson"
    rows.write_text('{"action": "view", "userID": "u"}\n')
    done = run_engauge(tmp_path / "data", "import", "--url", "file:///etc/passwd", str(rows))
    assert done.returncode != 0
    assert "give an http:// or https:// address" in done.stderr
