"""Parsing of the ``timestamp`` field (SPEC §1): many formats in, epoch seconds out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from email.utils import parsedate_to_datetime

from engauge.stream.calendar import EARLIEST, LATEST

MILLISECONDS_ABOVE = 10**11
"""Numbers above this are epoch milliseconds; below, epoch seconds (10^11 s is year 5138)."""


class TimestampError(ValueError):
    """The timestamp is not in any accepted format; the message says which ones are."""


def parse_timestamp(value: object, zone: tzinfo) -> float:
    """Return epoch seconds for a ``timestamp`` value.

    Accepts RFC 3339 / ISO 8601 (offset optional: none means ``zone``), a date alone
    (midnight in ``zone``), ``YYYY-MM-DD HH:MM[:SS[.fff]]``, RFC 1123, or a number of
    epoch seconds (milliseconds above 10^11).
    """
    if isinstance(value, bool):
        raise TimestampError("must be a string or a number, not a boolean")
    if isinstance(value, int | float):
        seconds = _from_number(value)
    elif isinstance(value, str):
        seconds = _from_string(value.strip(), zone)
    else:
        raise TimestampError("must be a string or a number")
    if not EARLIEST <= seconds < LATEST:
        raise TimestampError("must be between the years 1000 and 9000")
    return seconds


def _from_number(value: float) -> float:
    try:
        seconds = float(value)
    except OverflowError:
        raise TimestampError("is out of range") from None
    if not math.isfinite(seconds):
        raise TimestampError("must be a finite number")
    if seconds > MILLISECONDS_ABOVE:
        seconds /= 1000.0
    return seconds


def _from_string(text: str, zone: tzinfo) -> float:
    parsed = _parse_iso(text) or _parse_rfc1123(text)
    if parsed is None:
        raise TimestampError(
            f"{text[:40]!r} is not a date: use RFC 3339 (2026-12-04T10:00:00Z), "
            "YYYY-MM-DD[ HH:MM[:SS]], RFC 1123 or epoch seconds"
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.timestamp()
    except (OverflowError, ValueError):
        raise TimestampError("is out of range") from None


def _parse_iso(text: str) -> datetime | None:
    # fromisoformat also accepts compact forms such as "20261204"; only take strings that
    # look like a dashed calendar date, so a stray number is not read as a date.
    if len(text) < 10 or text[4] != "-" or text[7] != "-":
        return None
    try:
        return datetime.fromisoformat(text.upper())  # RFC 3339 allows "t" and "z"
    except ValueError:
        return None


def _parse_rfc1123(text: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        # "-0000" (and the zone-less form) means UTC in RFC 1123/2822 dates.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
