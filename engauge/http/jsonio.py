"""JSON in and out of HTTP bodies, with msgspec (which never writes NaN or Infinity)."""

from __future__ import annotations

from typing import Any

import msgspec
from quart import Response

from engauge.http.errors import ApiError

_decode = msgspec.json.decode


def decode_json(body: bytes | str, what: str = "body") -> Any:
    """The decoded body, or a ``400`` naming ``what`` and the problem."""
    try:
        return _decode(body)
    except msgspec.DecodeError as error:
        raise ApiError(400, f"{what}: invalid JSON: {error}") from None
    except RecursionError:
        raise ApiError(400, f"{what}: JSON nested too deeply") from None


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        msgspec.json.encode(value), status=status, headers=headers, content_type="application/json"
    )
