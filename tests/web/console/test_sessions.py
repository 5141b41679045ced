"""Console sessions: random ids, sliding expiry, sign-out, a bounded number held."""

from __future__ import annotations

import pytest

from sidecar.web.console.sessions import Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_slides_with_use_and_expires_when_idle() -> None:
    clock = Clock()
    sessions = Sessions(idle_seconds=60, clock=clock)
    session_id, session = sessions.open(read_only=False)
    assert len(session_id) >= 40
    assert session.csrf != session_id
    for _ in range(5):
        clock.now += 59
        assert sessions.find(session_id) is session
    clock.now += 60
    assert sessions.find(session_id) is None
    clock.now -= 30  # forgotten once expired: going back in time does not revive it
    assert sessions.find(session_id) is None


def test_ids_are_unguessable_and_sign_out_ends_one_session() -> None:
    sessions = Sessions(idle_seconds=60, clock=Clock())
    first, _ = sessions.open(read_only=False)
    second, read_only = sessions.open(read_only=True)
    assert first != second
    assert read_only.read_only
    assert sessions.find(None) is None
    assert sessions.find("") is None
    assert sessions.find(first + "x") is None
    sessions.close(first)
    assert sessions.find(first) is None
    assert sessions.find(second) is read_only


def test_the_oldest_sessions_go_first_beyond_the_bound() -> None:
    sessions = Sessions(idle_seconds=60, max_sessions=3, clock=Clock())
    ids = [sessions.open(read_only=False)[0] for _ in range(3)]
    assert sessions.find(ids[0]) is not None  # used: now the most recent
    newest, _ = sessions.open(read_only=False)
    assert sessions.find(ids[1]) is None
    assert all(sessions.find(i) is not None for i in (ids[0], ids[2], newest))


def test_a_notice_is_shown_once() -> None:
    sessions = Sessions(idle_seconds=60, clock=Clock())
    _, session = sessions.open(read_only=False)
    session.notice = "sync started"
    assert session.take_notice() == "sync started"
    assert session.take_notice() is None


def test_nonsense_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="idle_seconds"):
        Sessions(idle_seconds=0)
