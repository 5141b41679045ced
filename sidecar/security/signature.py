"""Timestamped HMAC-SHA256 signatures (PROTOCOL §1.1), used both ways.

ShopiMind signs the requests it sends to the sidecar; the sidecar signs the calls it makes
to the vendor's app, and the vendor's app signs its inbound calls, all with one scheme:

    signature = hex(HMAC-SHA256(secret, "<timestamp>.<raw body>"))

The timestamp is unix seconds, ASCII digits only. A request is fresh when
`now - ts <= tolerance` and `ts - now <= min(60, tolerance)`: the future side is strict
because a clock running ahead is rarer than a slow network.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "MAX_FUTURE_SKEW_SECONDS",
    "FailureReason",
    "Verification",
    "sign",
    "verify",
]

DEFAULT_TOLERANCE_SECONDS = 300
MAX_FUTURE_SKEW_SECONDS = 60

FailureReason = Literal[
    "missing_signature_headers",
    "invalid_timestamp",
    "timestamp_out_of_tolerance",
    "signature_mismatch",
    "no_secret_configured",
]
"""Why a signature was refused. For the server log only: callers get an opaque 401."""

# Fifteen digits reach the year 31 million: longer is garbage, and int() on a
# megabyte of digits is a cost an attacker should not be able to impose.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of `verify`: `ok`, or the reason it failed."""

    ok: bool
    reason: FailureReason | None = None

    def __bool__(self) -> bool:
        return self.ok


_PASSED = Verification(ok=True)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def sign(secret: str | bytes, timestamp: str | int, body: bytes) -> str:
    """Return the lower-case hex signature of `body` sent at `timestamp` (unix seconds)."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def verify(
    *,
    secrets: Sequence[str | bytes],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> Verification:
    """Check a signed request against every current secret (several during a rotation).

    `timestamp` and `signature` are the raw header values (None when absent); `body` is the
    raw request body, before any parsing. `now` defaults to the wall clock.
    """
    if not secrets:
        return Verification(ok=False, reason="no_secret_configured")
    if not timestamp or not signature:
        return Verification(ok=False, reason="missing_signature_headers")
    if _TIMESTAMP.fullmatch(timestamp) is None:
        return Verification(ok=False, reason="invalid_timestamp")
    sent_at = int(timestamp)
    current = int(time.time() if now is None else now)
    if current - sent_at > tolerance_seconds or sent_at - current > min(
        MAX_FUTURE_SKEW_SECONDS, tolerance_seconds
    ):
        return Verification(ok=False, reason="timestamp_out_of_tolerance")
    # A signature of the wrong length simply compares unequal (the right length is public).
    given = signature.encode("utf-8", "replace")
    # Check every secret, whichever matches: the time taken must not say which one did.
    matched = False
    for secret in secrets:
        expected = sign(secret, timestamp, body).encode("ascii")
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        return Verification(ok=False, reason="signature_mismatch")
    return _PASSED
