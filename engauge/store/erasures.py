"""Erasure of a person's raw interactions (data-subject requests).

An erasure is recorded durably in ``erasures.json`` before it is acknowledged, as a hash of
the person's (userType, userID) only. From then on the export leaves the person out, every
archived journal segment is rewritten without them (now, and each segment archived later),
and so is every restart. The statistics keep their counts, which hold no personal data. The
journal segments recovery still needs are left as they are until they are archived.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from engauge.store.files import read_json, write_json
from engauge.store.journal import scrub_segment
from engauge.stream.interaction import Interaction, UserKey, key_id

ERASURES_FILE = "erasures.json"


class Erasures:
    """The erased people of one base path."""

    def __init__(self, basepath: Path) -> None:
        self.path = basepath / ERASURES_FILE
        self.hashes: set[str] = set(read_json(self.path) or [])

    def add(self, user: UserKey) -> None:
        """Record the erasure durably (written and synced before this returns)."""
        self.hashes.add(key_id("user", user))
        write_json(self.path, sorted(self.hashes))

    def erased(self, user: UserKey) -> bool:
        return bool(self.hashes) and key_id("user", user) in self.hashes

    def without(self, batches: Iterable[list[Interaction]]) -> Iterator[list[Interaction]]:
        """The batches with every erased person's interactions left out."""
        for batch in batches:
            kept = [item for item in batch if not self.erased(item.user)] if self.hashes else batch
            if kept:
                yield kept

    def scrub(self, segments: Iterable[Path]) -> int:
        """Rewrite the segments without the erased people; how many interactions went."""
        if not self.hashes:
            return 0
        return sum(scrub_segment(path, self.erased) for path in segments)
