"""The raw-interaction export, from the journal and from the archive snapshots fill."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from conftest import EngaugeServer, wait_until

PAST = "2026-01-15T12:00:00+00:00"


def shop(prefix: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {"action": "view", "userID": f"{prefix}1", "timestamp": PAST, "originID": "home"},
        {
            "action": "conversion",
            "userID": f"{prefix}1",
            "timestamp": PAST,
            "properties": {"amount": 5},
        },
        {"action": "view", "userID": f"{prefix}2", "timestamp": PAST, "id": f"{prefix}-same"},
        {"action": "view", "userID": f"{prefix}2", "timestamp": PAST, "id": f"{prefix}-same"},
    ]
    return rows


def export(server: EngaugeServer, form: str, **params: str) -> str:
    response = server.dash(
        "GET", "/dashboard/export/interactions", params={"format": form, **params}
    )
    assert response.status_code == 200, response.text
    return response.text


def test_ndjson_export_holds_each_counted_interaction_once(
    start_server: Callable[..., EngaugeServer],
) -> None:
    server = start_server()
    server.send(*shop("u"))
    server.send({"action": "view", "userID": "today"})
    rows = [json.loads(line) for line in export(server, "ndjson", to="2026-02-01").splitlines()]
    assert sorted(row["userID"] for row in rows) == ["u1", "u1", "u2"]
    conversion = next(row for row in rows if row["action"] == "conversion")
    assert conversion["properties"] == {"amount": 5}
    assert conversion["timestamp"].startswith("2026-01-15T12:00:00")


def test_csv_export_has_a_header_and_reads_back(start_server: Callable[..., EngaugeServer]) -> None:
    server = start_server()
    server.send(*shop("c"))
    table = list(csv.DictReader(io.StringIO(export(server, "csv"))))
    assert len(table) == 3
    assert {row["userID"] for row in table} == {"c1", "c2"}
    assert json.loads(next(r for r in table if r["action"] == "conversion")["properties"]) == {
        "amount": 5
    }


def test_export_reads_archived_segments_after_snapshots(
    start_server: Callable[..., EngaugeServer],
) -> None:
    """A segment is archived once the two kept snapshots both cover it: after three."""
    server = start_server(env={"ENGAUGE_SNAPSHOTEVERY": "1"})
    archive = server.basepath / "archive"
    for prefix in "abc":
        server.send(*shop(prefix))
        server.settled_total()
        if prefix != "c":
            assert wait_until(lambda p=prefix: snapshot_count(server) >= "abc".index(p) + 1, 10)
    assert wait_until(archive.exists, 15)
    rows = export(server, "ndjson").splitlines()
    assert len(rows) == 9


def snapshot_count(server: EngaugeServer) -> int:
    return len(list((server.basepath / "snapshots").glob("*.snapshot")))


def test_export_is_refused_while_raw_interactions_are_not_kept(server: EngaugeServer) -> None:
    off = server.dash("PUT", "/dashboard/settings", json={"interactions": False})
    assert off.status_code == 200
    response = server.dash("GET", "/dashboard/export/interactions")
    assert response.status_code == 400
    assert response.json()["message"].startswith("interactions")
    server.dash("PUT", "/dashboard/settings", json={"interactions": True})
    bad = server.dash("GET", "/dashboard/export/interactions", params={"format": "xml"})
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("format")
