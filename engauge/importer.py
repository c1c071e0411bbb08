"""``engauge import``: interactions from NDJSON or from the Go Engauge's raw CSV files.

Into a stopped instance, rows are validated and appended to its journal (the next start
replays them); into a running one, they are posted to its ``/api/interactions``. Bad rows
are reported with their file and line and skipped. Rows of the Go service's CSV get an
``id`` derived from their content, so the same rows sent twice within the 24-hour
de-duplication window count once; a file already imported into a base path is skipped.
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import msgspec

from engauge.store.files import read_json, write_json
from engauge.store.journal import Journal
from engauge.store.layout import JOURNAL
from engauge.store.lock import lock_base_path
from engauge.stream.interaction import Interaction
from engauge.stream.validation import InvalidInteraction, validate_interaction

BATCH = 1000
IMPORTED_FILE = "imported.json"
GO_COLUMNS = (
    "action",
    "entityType",
    "entityID",
    "originType",
    "originID",
    "userType",
    "userID",
    "deviceType",
    "deviceID",
    "sessionType",
    "sessionID",
    "timestamp",
    "createdAt",
    "receivedAt",
    "properties",
)
GO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)? ([+-]\d{2})(\d{2})\b")
GO_FILE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})\.csv$")

Row = tuple[str, int, dict[str, Any] | str, float | None]
"""(file name, line number, the interaction as sent or an error message, receipt time)."""


class ImportProblem(ValueError):
    """The import cannot go on (no such path, unknown format); the message says why."""


def go_time(text: str) -> float:
    """Epoch seconds of Go's ``time.String()``: the numeric offset counts, not the name."""
    found = GO_TIME.match(text.strip())
    if found is None:
        raise ValueError(f"{text[:40]!r} is not a Go time such as 2021-03-01 10:00:00 +0000 UTC")
    day, clock, fraction, hours, minutes = found.groups()
    micro = (fraction or ".0")[:7]
    return datetime.fromisoformat(f"{day}T{clock}{micro}{hours}:{minutes}").timestamp()


def go_row(fields: list[str]) -> tuple[dict[str, Any], float | None]:
    """A Go Engauge CSV row as an interaction in the ingestion format, and its receipt time."""
    if len(fields) != len(GO_COLUMNS):
        raise ValueError(f"has {len(fields)} columns; the Go Engauge wrote {len(GO_COLUMNS)}")
    row = dict(zip(GO_COLUMNS, fields, strict=True))
    item: dict[str, Any] = {name: row[name] for name in GO_COLUMNS[:10] if row[name]}
    item["timestamp"] = go_time(row["createdAt"])
    if row["properties"].strip():
        try:
            item["properties"] = msgspec.json.decode(row["properties"])
        except (msgspec.DecodeError, RecursionError) as error:
            raise ValueError(f"properties: invalid JSON: {error}") from None
    item["id"] = content_id("go", msgspec.json.encode(fields))
    received = go_time(row["receivedAt"]) if row["receivedAt"].strip() else None
    return item, received


def content_id(prefix: str, content: bytes) -> str:
    """An ``id`` derived from a row, so the same row sent twice is counted once."""
    return f"{prefix}-{hashlib.sha256(content).hexdigest()[:32]}"


def files_of(path: Path) -> list[Path]:
    """``path`` itself, or the daily files of a Go ``interactions/`` directory, by date."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ImportProblem(f"{path}: no such file or directory")
    dated = []
    for child in path.iterdir():
        found = GO_FILE.match(child.name)
        if found:
            dated.append((tuple(int(part) for part in found.groups()), child))
    others = sorted(child for child in path.iterdir() if child.suffix in (".ndjson", ".jsonl"))
    return [child for _, child in sorted(dated)] + others


def read_rows(path: Path, form: str) -> Iterator[Row]:
    # Bytes that are not UTF-8 become U+FFFD rather than stopping the file.
    with path.open(newline="", encoding="utf-8", errors="replace") as file:
        if form == "ndjson":
            yield from _ndjson_rows(path.name, file)
        else:
            yield from _go_rows(path.name, file)


def _ndjson_rows(name: str, file: TextIO) -> Iterator[Row]:
    for number, line in enumerate(file, 1):
        if not line.strip():
            continue
        try:
            item = msgspec.json.decode(line)
        except (msgspec.DecodeError, RecursionError) as error:
            yield name, number, f"invalid JSON: {error}", None
            continue
        if isinstance(item, dict) and not item.get("id"):
            item["id"] = content_id("row", line.strip().encode())
        yield name, number, item, None


def _go_rows(name: str, file: TextIO) -> Iterator[Row]:
    reader = csv.reader(file)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            # The reader cannot resynchronise after this: report it and stop the file.
            yield (
                name,
                reader.line_num,
                f"unreadable CSV ({error}); the rest of the file skipped",
                None,
            )
            return
        number = reader.line_num
        try:
            item, received = go_row(fields)
        except ValueError as error:
            yield name, number, str(error), None
            continue
        yield name, number, item, received


def guess_format(path: Path) -> str:
    return "engauge-csv" if path.suffix == ".csv" else "ndjson"


class Report:
    """Counts and problems, written to ``out`` as the import goes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.imported = 0
        self.rejected = 0
        self._shown = time.monotonic()

    def bad(self, name: str, number: int, message: str) -> None:
        self.rejected += 1
        print(f"{name}:{number}: skipped: {message}", file=self.out)

    def progress(self, name: str, done: int, total: int) -> None:
        """At most once a second: how far into the file the import is."""
        if time.monotonic() - self._shown >= 1.0:
            self._shown = time.monotonic()
            share = 100 * done / total if total else 100.0
            print(f"{name}: {share:5.1f} %  ({self.imported:,} imported)", file=self.out)


def import_offline(
    paths: list[Path], form: str | None, basepath: Path, zone: tzinfo, out: TextIO = sys.stderr
) -> Report:
    """Validate and append to a stopped instance's journal."""
    lock_base_path(basepath)
    journal = Journal.recover(basepath / JOURNAL, lambda _: None)
    done: dict[str, Any] = read_json(basepath / IMPORTED_FILE) or {}
    report = Report(out)
    try:
        for path in paths:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in done:
                print(f"{path}: imported before ({done[digest]}); skipped", file=out)
                continue
            before = report.imported
            _append_file(path, form or guess_format(path), journal, zone, report)
            done[digest] = f"{path.name}, {report.imported - before} interactions"
            journal.sync()
            write_json(basepath / IMPORTED_FILE, done)
    finally:
        journal.close()
    return report


def _append_file(path: Path, form: str, journal: Journal, zone: tzinfo, report: Report) -> None:
    batch: list[Interaction] = []
    lines = path.read_bytes().count(b"\n")
    now = time.time()
    for name, number, item, received in read_rows(path, form):
        if isinstance(item, str):
            report.bad(name, number, item)
            continue
        try:
            # A receipt time is the original's (Go rows) but never later than now.
            received_at = min(received or now, now)
            batch.append(validate_interaction(item, now=received_at, zone=zone))
        except InvalidInteraction as error:
            report.bad(name, number, str(error))
            continue
        report.imported += 1
        if len(batch) == BATCH:
            journal.append(batch)
            batch = []
            report.progress(path.name, number, lines)
    if batch:
        journal.append(batch)


def import_online(
    paths: list[Path], form: str | None, url: str, api_key: str, out: TextIO = sys.stderr
) -> Report:
    """Post the rows to a running instance, 1,000 per request."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ImportProblem(f"--url {url}: give an http:// or https:// address")
    report = Report(out)
    for path in paths:
        pending: list[tuple[str, int, dict[str, Any]]] = []
        for name, number, item, _ in read_rows(path, form or guess_format(path)):
            if isinstance(item, str):
                report.bad(name, number, item)
                continue
            pending.append((name, number, item))
            if len(pending) == BATCH:
                _post(url, api_key, pending, report)
                pending = []
        if pending:
            _post(url, api_key, pending, report)
    return report


def _post(
    url: str, api_key: str, rows: list[tuple[str, int, dict[str, Any]]], report: Report
) -> None:
    request = urllib.request.Request(
        url.rstrip("/") + "/api/interactions",
        data=msgspec.json.encode([item for _, _, item in rows]),
        headers={"api-key": api_key, "content-type": "application/json"},
        method="POST",
    )
    try:
        # The scheme was checked by import_online: only http and https reach here.
        with urllib.request.urlopen(request, timeout=60) as response:  # nosec B310
            answer = msgspec.json.decode(response.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            answer = msgspec.json.decode(body or b"{}")
        except msgspec.DecodeError:
            answer = {"message": body[:200].decode(errors="replace")}
        if error.code != 400:
            raise ImportProblem(
                f"{url}: {error.code} {answer.get('message', '')}; "
                f"{report.imported:,} imported before it stopped"
            ) from None
    except urllib.error.URLError as error:
        raise ImportProblem(f"{url}: {error.reason}") from None
    for rejection in answer.get("rejected", []):
        name, number, _ = rows[rejection["index"]]
        report.bad(name, number, rejection["message"])
    report.imported += answer.get("accepted", 0)
