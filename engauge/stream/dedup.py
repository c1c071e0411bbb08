"""The de-duplication window for client event ids (SPEC §1)."""

from __future__ import annotations

DEDUP_SECONDS = 24 * 3600.0
MAX_IDS = 2_000_000
"""Ids remembered at most (about 200 MB); beyond, the oldest are forgotten early."""


class DedupWindow:
    """Ids accepted within the last 24 hours (by receipt time).

    The dict keeps insertion order, which is receipt order, so expiry pops from the front
    in O(1) per expired id without a second index.
    """

    def __init__(self, seconds: float = DEDUP_SECONDS) -> None:
        self.seconds = seconds
        self.seen: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.seen)

    def is_duplicate(self, event_id: str, now: float) -> bool:
        """True when ``event_id`` was accepted within the window; otherwise remember it."""
        self._expire(now)
        first = self.seen.get(event_id)
        if first is not None and now - first <= self.seconds:
            return True
        self.seen.pop(event_id, None)
        self.seen[event_id] = now
        if len(self.seen) > MAX_IDS:
            del self.seen[next(iter(self.seen))]
        return False

    def _expire(self, now: float) -> None:
        seen = self.seen
        oldest = now - self.seconds
        while seen:
            event_id, first = next(iter(seen.items()))
            if first >= oldest:
                return
            del seen[event_id]
