"""The console's sessions: a random id in an `HttpOnly` cookie, held in memory.

A session carries its CSRF token and whether it was opened with the read-only token. It
lasts `idle_seconds` after its last use (sliding), and the number held is bounded (the
oldest go first), so a flood of sign-ins cannot grow the process. Sessions end with the
process: a restart signs everyone out, which is what a rotated token wants anyway.
Time comes from trio's clock, so tests drive expiry with MockClock.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import trio

__all__ = ["MAX_SESSIONS", "Session", "Sessions"]

MAX_SESSIONS: Final = 1000
_ID_BYTES: Final = 32


@dataclass(slots=True)
class Session:
    """One signed-in browser."""

    csrf: str
    read_only: bool
    expires_at: float
    notice: str | None = None
    """A message for the next page shown (what an action did), shown once."""

    def take_notice(self) -> str | None:
        """The pending message, cleared."""
        notice, self.notice = self.notice, None
        return notice


def _key(session_id: str) -> bytes:
    # Held by digest: a memory dump or a timing probe of the dict shows no usable id.
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()


class Sessions:
    """Open, find (and extend) and close sessions."""

    def __init__(
        self,
        *,
        idle_seconds: float,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if idle_seconds <= 0 or max_sessions < 1:
            raise ValueError("sessions need idle_seconds > 0 and max_sessions >= 1")
        self._idle = idle_seconds
        self._max = max_sessions
        self._clock = clock
        self._held: OrderedDict[bytes, Session] = OrderedDict()

    def open(self, *, read_only: bool) -> tuple[str, Session]:
        """A new session and its id (the cookie's value)."""
        session_id = secrets.token_urlsafe(_ID_BYTES)
        session = Session(
            csrf=secrets.token_urlsafe(_ID_BYTES),
            read_only=read_only,
            expires_at=self._clock() + self._idle,
        )
        self._held[_key(session_id)] = session
        while len(self._held) > self._max:
            self._held.popitem(last=False)
        return session_id, session

    def find(self, session_id: str | None) -> Session | None:
        """The live session with this id, its expiry pushed back; None when unknown or
        expired (an expired one is forgotten)."""
        if not session_id:
            return None
        key = _key(session_id)
        session = self._held.get(key)
        if session is None:
            return None
        now = self._clock()
        if session.expires_at <= now:
            del self._held[key]
            return None
        session.expires_at = now + self._idle
        self._held.move_to_end(key)
        return session

    def close(self, session_id: str | None) -> None:
        """Forget the session (signing out)."""
        if session_id:
            self._held.pop(_key(session_id), None)
