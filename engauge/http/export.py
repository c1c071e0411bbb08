"""``GET /dashboard/export/interactions``: raw interactions as NDJSON or CSV, streamed.

Rows are read from the journal and its archive a segment at a time in a worker thread,
filtered by event time, and de-duplicated exactly as the aggregator does, so the export
holds what the statistics count. NDJSON rows are in the ingestion format and can be
imported again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import msgspec
import trio

from engauge.stream.dedup import DedupWindow
from engauge.stream.interaction import Interaction
from engauge.stream.validation import STRING_FIELDS

FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
COLUMNS = (*STRING_FIELDS, "timestamp", "receivedAt", "properties")
"""Field names as in the ingestion format, plus the receipt time."""

RawReader = Callable[[], Iterator[list[Interaction]]]


def row(item: Interaction, label: Callable[[float], str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: getattr(item, attribute) for name, attribute in STRING_FIELDS.items()
    }
    values.update(
        timestamp=label(item.created_at),
        receivedAt=label(item.received_at),
        properties=item.properties,
    )
    return values


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(msgspec.json.encode(value) + b"\n" for value in rows)


def csv_text(rows: list[dict[str, Any]], header: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    for value in rows:
        properties = msgspec.json.encode(value["properties"]).decode()
        writer.writerow([*(value[name] for name in COLUMNS[:-1]), properties])
    return buffer.getvalue().encode()


async def export_stream(
    read: RawReader, start: float, end: float, form: str, label: Callable[[float], str]
) -> AsyncIterator[bytes]:
    """The export's bytes, one chunk per journaled batch that has rows in range."""
    encode = ndjson if form == "ndjson" else csv_text
    if form == "csv":
        yield csv_text([], header=True)
    batches = read()
    dedup = DedupWindow()
    while (batch := await trio.to_thread.run_sync(next, batches, None)) is not None:
        rows = [
            row(item, label)
            for item in batch
            if not (item.id and dedup.is_duplicate(item.id, item.received_at))
            and start <= item.created_at < end
        ]
        if rows:
            yield encode(rows)
