"""Open sessions: the bytes each one costs, and the deadline index that closes them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from engauge.store import snapshot as snapshots
from engauge.store.journal import Position
from engauge.stream.aggregator import Aggregator
from engauge.stream.calendar import Calendar
from engauge.stream.interaction import Interaction
from engauge.stream.sessions import Sessions
from engauge.stream.settings import Settings

DELAY = 1800.0


def view(user: str, page: int, at: float = 1000.0) -> Interaction:
    """Fresh strings each call, as decoding a request makes them."""
    return Interaction(
        action="view",
        user_id=user,
        created_at=at,
        received_at=at,
        origin_type="".join(["pa", "ge"]),
        origin_id=f"/page/{page}",
        device_type="".join(["mo", "bile"]),
    )


def arrival(user: str, created_at: float, received_at: float) -> Interaction:
    return Interaction(action="view", user_id=user, created_at=created_at, received_at=received_at)


def test_open_sessions_share_one_copy_of_each_group_and_origin() -> None:
    sessions = Sessions(DELAY)
    sessions.touch(view("a", 1))
    sessions.touch(view("b", 1))
    sessions.touch(view("b", 2, at=1010.0))
    sessions.touch(view("c", 2))
    a, b, c = sessions.open.values()
    assert a.group is b.group is c.group
    assert a.entry is b.entry
    assert b.exit is c.entry


def test_sessions_of_interactions_received_together_share_one_deadline() -> None:
    sessions = Sessions(DELAY)
    received = 1000.0 + DELAY / 7
    for user in ("a", "b"):
        # Equal receipt times but distinct floats, as decoding a batch from the journal gives.
        sessions.touch(arrival(user, 900.0, float(str(received))))
    sessions.touch(arrival("c", 900.0, received + 1))
    a, b, c = sessions.open.values()
    assert a.deadline is b.deadline
    assert c.deadline == received + 1 + DELAY


def test_restored_sessions_share_them_again() -> None:
    aggregator = Aggregator(Calendar(ZoneInfo("UTC")), DELAY, Settings())
    aggregator.apply([view("a", 1), view("b", 1)])
    snapshot = snapshots.Snapshot(Position(1, 0), "UTC", 0, aggregator.state())
    stored = snapshots.decode(snapshots.encode(snapshot)).state
    first, second = stored.sessions.values()
    assert first.group is not second.group, "decoding gives each session its own tuples"
    restored = Sessions(DELAY)
    restored.restore(stored.sessions)
    first, second = restored.open.values()
    assert first.group is second.group
    assert first.entry is second.entry is second.exit


def test_a_user_filed_twice_is_filed_again_once_and_completed_once() -> None:
    sessions = Sessions(60.0)
    sessions.touch(arrival("u", 1000.0, 1000.0))
    _, completed = sessions.touch(arrival("u", 1100.0, 1000.0))
    assert completed is not None, "an event-time gap completes the first session"
    assert list(sessions.deadlines.items()) == [(1060, [("", "u"), ("", "u")])]
    sessions.touch(arrival("u", 1101.0, 1030.0))
    assert sessions.expire(1070.0) == []
    assert list(sessions.deadlines.items()) == [(1090, [("", "u")])]
    assert len(sessions.expire(1090.0)) == 1
    assert not sessions.deadlines and not sessions.open


def test_a_long_session_keeps_its_counts_and_flags() -> None:
    """The tally holds the count beyond the small shared ints, and both flags apart."""
    sessions = Sessions(DELAY)
    for number in range(300):
        sessions.touch(view("u", page=1, at=1000.0 + number))
    (session,) = sessions.open.values()
    assert (session.interactions, session.converted, session.several_origins) == (300, False, False)
    conversion = Interaction(
        action="conversion", user_id="u", created_at=1400.0, received_at=1400.0
    )
    sessions.touch(conversion)
    completed = session.completed()
    assert (completed.interactions, completed.converted, completed.bounced) == (301, True, False)
