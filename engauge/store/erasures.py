"""Erasure of a person's raw interactions (data-subject requests).

An erasure is recorded durably in ``erasures.json`` before it is acknowledged, as a keyed
hash (HMAC with a secret of the base path) of the person's (userType, userID) only, so the
file cannot be matched against a list of known ids. From then on the export leaves the person
out, and every archived journal segment is rewritten without them: now, each segment archived
later, and again at every start (in case a scrub was cut short). The statistics keep their
counts, which hold no personal data. The journal segments recovery still needs are left as
they are until they are archived.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from engauge.store.files import read_json, write_json
from engauge.store.journal import scrub_segment
from engauge.stream.interaction import Interaction, UserKey

ERASURES_FILE = "erasures.json"


class Erasures:
    """The erased people of one base path."""

    def __init__(self, basepath: Path, secret: str) -> None:
        self.path = basepath / ERASURES_FILE
        self.key = secret.encode("utf-8", "surrogatepass")
        self.hashes: set[str] = set(read_json(self.path) or [])
        # One erasure or scrub at a time: they rewrite the same files.
        self._lock = threading.Lock()

    def _hash(self, user: UserKey) -> str:
        identity = msgspec.json.encode(list(user))
        return hmac.new(self.key, identity, hashlib.blake2b).hexdigest()[:32]

    def add(self, user: UserKey) -> None:
        """Record the erasure durably (written and synced before this returns)."""
        with self._lock:
            self.hashes.add(self._hash(user))
            write_json(self.path, sorted(self.hashes))

    def erased(self, user: UserKey) -> bool:
        return bool(self.hashes) and self._hash(user) in self.hashes

    def without(self, batches: Iterable[list[Interaction]]) -> Iterator[list[Interaction]]:
        """The batches with every erased person's interactions left out."""
        for batch in batches:
            kept = [item for item in batch if not self.erased(item.user)] if self.hashes else batch
            if kept:
                yield kept

    def scrub(self, segments: Iterable[Path], *, wait: bool = True) -> int:
        """Rewrite the segments without the erased people; how many interactions went.

        Without ``wait`` (on the event loop) it gives up at once when another scrub is
        running; what it leaves is scrubbed at the next start, and the export hides it.
        """
        if not self.hashes or not self._lock.acquire(blocking=wait):
            return 0
        try:
            return sum(scrub_segment(path, self.erased) for path in segments)
        finally:
            self._lock.release()
