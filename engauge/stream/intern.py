"""One shared copy of each identity tuple that many open sessions repeat.

A million open sessions name only a few session groups and usually a few thousand
origins, but each interaction brings its own tuples (and strings) for them. A session
that keeps the shared copy instead saves that tuple and its strings: over a hundred bytes.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class InternTable(Generic[K]):
    """The first-seen copy of each key, for at most ``capacity`` distinct keys.

    When the table is full it starts over rather than refusing new keys: a flood of
    distinct keys costs at most ``capacity`` entries, keys already shared stay shared by
    whoever holds them, and keys that are common now are shared again soon after.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: dict[K, K] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def intern(self, key: K) -> K:
        """The shared copy equal to ``key`` (``key`` itself when it is new): O(1)."""
        shared = self._keys.get(key)
        if shared is not None:
            return shared
        if len(self._keys) >= self.capacity:
            self._keys.clear()
        self._keys[key] = key
        return key
