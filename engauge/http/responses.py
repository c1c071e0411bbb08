"""JSON responses for the Quart side, encoded with msgspec (which never writes NaN)."""

from __future__ import annotations

from typing import Any

import msgspec
from quart import Response


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        msgspec.json.encode(value), status=status, headers=headers, content_type="application/json"
    )
