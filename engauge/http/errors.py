"""The one error shape of every HTTP answer: ``{"message": ...}`` with the right status.

Handlers raise :class:`ApiError`; the ingest path and the Quart app both turn it into the
same JSON body. Messages name the input at fault and what to do about it.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refused request: ``status``, a message, extra ``headers`` and extra body ``details``."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or []
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        return {"message": str(self), **self.details}


class Refused:
    """One item of a batch that is not an interaction (a line that is not JSON, an SDK
    message of a kind Engauge does not take): rejected by its index with ``message``."""

    def __init__(self, message: str) -> None:
        self.message = message
