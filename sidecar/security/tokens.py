"""Token comparison that leaks neither the content nor the length of the expected token.

`hmac.compare_digest` is constant-time only for inputs of equal length; comparing two
SHA-256 digests instead makes every comparison work on 32 bytes, whatever was sent.
The expected token is hashed once, up front, so its length does not show in the timing
of a request either.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["TokenMatcher", "tokens_equal"]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenMatcher:
    """Compares candidate tokens against one expected token in constant time."""

    __slots__ = ("_expected",)

    def __init__(self, expected: str) -> None:
        if not expected:
            raise ValueError("an empty token would match nothing safely; refuse to build one")
        self._expected = _digest(expected)

    def __repr__(self) -> str:
        return "TokenMatcher(<hidden>)"

    def matches(self, candidate: str | None) -> bool:
        """True when `candidate` equals the expected token; None and "" never match."""
        if not candidate:
            # Still pay for one digest so a missing token costs what a wrong one does.
            hmac.compare_digest(self._expected, _digest("\0"))
            return False
        return hmac.compare_digest(self._expected, _digest(candidate))


def tokens_equal(expected: str, candidate: str | None) -> bool:
    """One-shot form of `TokenMatcher(expected).matches(candidate)`."""
    return TokenMatcher(expected).matches(candidate)
