"""Automatic session detection (SPEC §3): one open session per user.

Sessions live in event time (``created_at``) but also close by the server clock: when
(arrival of the newest interaction) + delay has passed. Open sessions sit in a sorted index
of whole deadline seconds, so closing the due ones never scans all users.

Deadlines only move later, so the index is lazy: a user stays filed under the second of
an earlier deadline, and when that second comes due the session is either completed or
filed again under its real deadline. Joining a session therefore costs no index work.
Users are filed under the whole second at or before the deadline, so a deadline a
fraction of a second past is never missed.

Each second files its users in a list: 8 bytes a user, where a set cost over 30. A user
can be filed more than once, even twice under one second: a session that completed on
the user's next interaction, or by an erasure, leaves its filing behind. A filing is only
a reminder to look at the user's session, so a stale one costs a look: when it comes due
it finds no session, or one not yet due, and :meth:`Sessions.expire` files each user
again at most once per call, which merges the duplicates that come due together.
"""

from __future__ import annotations

import math
from enum import Enum

import msgspec
from sortedcontainers import SortedDict

from engauge.stream.bucket import CompletedSession, SessionGroupKey
from engauge.stream.interaction import Interaction, OriginKey, UserKey
from engauge.stream.intern import InternTable

SHARED_KEYS = 10_000
"""Distinct session groups, and distinct origins, that open sessions share one copy of."""


class Touch(Enum):
    """How an interaction met its user's session."""

    OPENED = "opened"
    JOINED = "joined"
    LATE = "late"


ONE_INTERACTION = 4
CONVERTED = 2
SEVERAL_ORIGINS = 1
"""What :attr:`Session.tally` adds per interaction, and its two flags."""


def tally_of(interactions: int, *, converted: bool, several_origins: bool) -> int:
    """The :attr:`Session.tally` of these counts."""
    return (
        interactions * ONE_INTERACTION + converted * CONVERTED + several_origins * SEVERAL_ORIGINS
    )


class Session(msgspec.Struct, gc=False):
    """An open session: what completion needs, nothing more (bounded per user).

    A million of these stay open at once, so every field counts: 80 bytes each. It is a
    msgspec struct rather than an attrs class because it can be left out of the garbage
    collector: it holds only numbers and tuples of strings, so it can never be part of a
    reference cycle, and each one then saves the collector's 16-byte header and its time.

    ``tally`` holds three fields in one: :data:`ONE_INTERACTION` per interaction, plus
    :data:`CONVERTED` once one was a conversion, plus :data:`SEVERAL_ORIGINS` once one came
    from a second origin. It stays a small (shared) int up to 63 interactions. Until the
    second origin every interaction came from ``entry``, so a new origin is a second one
    exactly when it differs from ``entry``.
    """

    opened_at: float
    start: float
    last: float
    deadline: float
    tally: int
    group: SessionGroupKey
    entry: OriginKey
    exit: OriginKey

    @property
    def interactions(self) -> int:
        return self.tally // ONE_INTERACTION

    @property
    def converted(self) -> bool:
        return bool(self.tally & CONVERTED)

    @property
    def several_origins(self) -> bool:
        return bool(self.tally & SEVERAL_ORIGINS)

    def completed(self) -> CompletedSession:
        return CompletedSession(
            opened_at=self.opened_at,
            group=self.group,
            duration=self.last - self.start,
            interactions=self.interactions,
            bounced=not self.several_origins,
            converted=self.converted,
            entry=self.entry,
            exit=self.exit,
        )


class Sessions:
    """Open sessions and their wall-clock deadline index.

    ``delay`` is the session gap in seconds.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.open: dict[UserKey, Session] = {}
        self.deadlines: SortedDict = SortedDict()
        self._groups = InternTable[SessionGroupKey](SHARED_KEYS)
        self._origins = InternTable[OriginKey](SHARED_KEYS)
        self._received_at = math.nan
        self._deadline = math.nan

    def __len__(self) -> int:
        return len(self.open)

    def touch(self, interaction: Interaction) -> tuple[Touch, CompletedSession | None]:
        """Apply one interaction in arrival order: O(1) to join, O(log n) to open.

        Returns how it met its user's session and the session it completed, if any.
        """
        user = interaction.user
        t = interaction.created_at
        completed = None
        session = self.open.get(user)
        if session is not None and (
            session.deadline <= interaction.received_at or t > session.last + self.delay
        ):
            completed = self.open.pop(user).completed()
            session = None
        if session is None:
            self._open(user, interaction)
            return Touch.OPENED, completed
        if t < session.start - self.delay:
            return Touch.LATE, None
        self._join(session, interaction)
        return Touch.JOINED, None

    def expire(self, now: float) -> list[CompletedSession]:
        """Complete every session whose deadline is at or before ``now``.

        O(k log n) for k sessions filed under due seconds.
        """
        completed: list[CompletedSession] = []
        not_due: list[UserKey] = []
        deadlines = self.deadlines
        while deadlines and deadlines.peekitem(0)[0] <= now:
            _, users = deadlines.popitem(0)
            for user in users:
                session = self.open.get(user)
                if session is None:
                    continue
                if session.deadline <= now:
                    completed.append(self.open.pop(user).completed())
                else:
                    not_due.append(user)
        for user in dict.fromkeys(not_due):
            self._index(user, self.open[user].deadline)
        return completed

    def restore(self, sessions: dict[UserKey, Session]) -> None:
        """Take over stored open sessions, filing each under its deadline.

        Decoding gave every session its own group and origin tuples; they are shared again.
        """
        for user, session in sessions.items():
            session.group = self._groups.intern(session.group)
            session.entry = self._origins.intern(session.entry)
            session.exit = self._origins.intern(session.exit)
            self.open[user] = session
            self._index(user, session.deadline)

    def _open(self, user: UserKey, interaction: Interaction) -> None:
        t = interaction.created_at
        origin = self._origins.intern(interaction.origin)
        group = (interaction.user_type, interaction.device_type, interaction.session_type)
        session = Session(
            opened_at=t,
            start=t,
            last=t,
            deadline=self._deadline_of(interaction),
            tally=tally_of(1, converted=interaction.action == "conversion", several_origins=False),
            group=self._groups.intern(group),
            entry=origin,
            exit=origin,
        )
        self.open[user] = session
        self._index(user, session.deadline)

    def _index(self, user: UserKey, deadline: float) -> None:
        second = math.floor(deadline)
        users = self.deadlines.get(second)
        if users is None:
            users = self.deadlines[second] = []
        users.append(user)

    def _join(self, session: Session, interaction: Interaction) -> None:
        t = interaction.created_at
        origin = self._origins.intern(interaction.origin)
        counts = session.tally + ONE_INTERACTION
        if interaction.action == "conversion":
            counts |= CONVERTED
        if origin != session.entry:
            counts |= SEVERAL_ORIGINS
        session.tally = counts
        if t < session.start:
            session.start = t
            session.entry = origin
        if t >= session.last:
            session.last = t
            session.exit = origin
        session.deadline = max(session.deadline, self._deadline_of(interaction))

    def _deadline_of(self, interaction: Interaction) -> float:
        """Its arrival + delay, as one float shared by interactions that arrived together.

        A batch's interactions share their receipt time, and their sessions would each keep
        an equal deadline of 32 bytes; equal values give equal results, so one copy serves.
        """
        if interaction.received_at != self._received_at:
            self._received_at = interaction.received_at
            self._deadline = interaction.received_at + self.delay
        return self._deadline
