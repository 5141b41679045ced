"""The two identities of an inbound event: its dedup key here, its Idempotency-Key upstream.

The dedup key makes a retried call from the app a replay instead of a second event
(PROTOCOL §5): the app's own `x-idempotency-key` when it sends one, else the request's
signature, which covers the timestamp and the exact body — a byte-identical resend within
the signature's tolerance is the same event.

The `Idempotency-Key` sent to ShopiMind is derived from the installation and the dedup
key, never from a row id: it survives restarts and retries unchanged, so a delivery that
reached ShopiMind but whose answer was lost is recognised when it is sent again. Hashing
keeps the app's key (which may say something about its data) out of ShopiMind's logs.
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = [
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "InvalidIdempotencyKeyError",
    "dedup_key",
    "upstream_idempotency_key",
]

MAX_IDEMPOTENCY_KEY_CHARS: Final = 255


class InvalidIdempotencyKeyError(ValueError):
    """The app's `x-idempotency-key` is too long or holds characters other than printable
    ASCII; the message says which."""


def dedup_key(action: str, signature: str, idempotency_key: str | None) -> str:
    """`x-idempotency-key` when given (non-empty), else `sig:<action>:<signature>`."""
    if idempotency_key:
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
            raise InvalidIdempotencyKeyError(
                f"x-idempotency-key is longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters"
            )
        if not (idempotency_key.isascii() and idempotency_key.isprintable()):
            raise InvalidIdempotencyKeyError("x-idempotency-key must be printable ASCII")
        return idempotency_key
    return f"sig:{action}:{signature}"


def upstream_idempotency_key(installation_id: str, dedup: str) -> str:
    """The `Idempotency-Key` of every attempt to deliver this event to ShopiMind."""
    digest = hashlib.sha256(f"{installation_id}\n{dedup}".encode()).hexdigest()
    return f"inbound-{digest[:40]}"
