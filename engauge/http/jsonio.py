"""JSON in and out of HTTP bodies, with msgspec (which never writes NaN or Infinity)."""

from __future__ import annotations

from typing import Any

import msgspec
from quart import Response, request

from engauge.http.errors import ApiError

_decode = msgspec.json.decode
_decode_out_of_range = msgspec.json.Decoder(float_hook=float).decode
"""Decodes a number beyond a float's range (``1e400``) as ``inf``, which msgspec's default
refuses without saying where it stood."""


def decode_json(body: bytes | str, what: str = "body") -> Any:
    """The decoded body, or a ``400`` naming ``what`` and the problem.

    Nesting deeper than Python's recursion limit allows (about 1,000 levels; an interaction
    needs 4) is a ``400``, as are ``NaN`` and ``Infinity``, which are not JSON, and invalid
    UTF-8. Of keys given twice, the last wins. A number too large for a float is decoded as
    an infinity, so validation refuses it naming its field rather than the whole body.
    """
    try:
        try:
            return _decode(body)
        except msgspec.ValidationError:  # the one cause untyped: a number out of range
            return _decode_out_of_range(body)
    except msgspec.DecodeError as error:
        raise ApiError(400, f"{what}: invalid JSON: {error}") from None
    except RecursionError:
        raise nested_too_deeply(what) from None


def nested_too_deeply(what: str = "body") -> ApiError:
    return ApiError(400, f"{what}: JSON nested too deeply")


async def request_json() -> Any:
    """The current Quart request's body, decoded (see :func:`decode_json`)."""
    return decode_json(await request.get_data())


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        msgspec.json.encode(value), status=status, headers=headers, content_type="application/json"
    )
