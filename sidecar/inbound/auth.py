"""Who is calling: the installation header, its inbound secret, the signature (PROTOCOL §5).

The app signs each inbound call exactly as ShopiMind signs its webhooks (the one `verify`
of `sidecar.security.signature`), with the installation's own inbound secret:

    x-integration-installation: <installation id>
    x-integration-timestamp:    <unix seconds>
    x-integration-signature:    hex(HMAC-SHA256(inbound secret, "<timestamp>.<raw body>"))

An installation that does not exist (or has no inbound secret: never activated, or
uninstalled) is refused only after an HMAC of the same cost against a dummy secret, so the
time an answer takes does not tell an outsider which installation ids exist. Every
refusal is the same opaque 401; the reason goes to the server log only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from sidecar.lifecycle.answers import Answer
from sidecar.logs import get_logger
from sidecar.security.signature import DEFAULT_TOLERANCE_SECONDS, verify
from sidecar.store.interface import InboundEvents
from sidecar.store.records import InboundContext

__all__ = [
    "IDEMPOTENCY_HEADER",
    "INSTALLATION_HEADER",
    "MAX_INSTALLATION_ID_CHARS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "InboundRequest",
    "authenticate",
]

INSTALLATION_HEADER: Final = "x-integration-installation"
TIMESTAMP_HEADER: Final = "x-integration-timestamp"
SIGNATURE_HEADER: Final = "x-integration-signature"
IDEMPOTENCY_HEADER: Final = "x-idempotency-key"
MAX_INSTALLATION_ID_CHARS: Final = 255
"""Longer is no id ShopiMind issued; it is refused like an unknown one."""

# The shape of a real secret (`insec_` + 48 hex), so the dummy HMAC costs what a real one does.
_DUMMY_SECRET: Final = "insec_" + "0" * 48

_log = get_logger("inbound")


class Headers(Protocol):
    """A case-insensitive header lookup (quart's `request.headers`)."""

    def get(self, key: str, /) -> str | None:
        """The header's value, or None."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRequest:
    """What the rules need of an inbound HTTP request: its headers and its raw body."""

    installation_id: str | None
    timestamp: str | None
    signature: str | None
    idempotency_key: str | None
    body: bytes

    @classmethod
    def from_headers(cls, headers: Headers, body: bytes) -> InboundRequest:
        """Pick the inbound headers out of a case-insensitive lookup, with the raw body."""
        return cls(
            installation_id=headers.get(INSTALLATION_HEADER),
            timestamp=headers.get(TIMESTAMP_HEADER),
            signature=headers.get(SIGNATURE_HEADER),
            idempotency_key=headers.get(IDEMPOTENCY_HEADER),
            body=body,
        )


async def authenticate(
    events: InboundEvents,
    request: InboundRequest,
    *,
    route: str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> InboundContext | Answer:
    """The installation of a correctly signed request (with what the next checks need), or
    the answer refusing it: 400 `missing_installation_header`, or 401 `unauthorized`
    (unknown installation, no inbound secret, bad or stale signature). `route` names the
    request in the log."""
    installation_id = (request.installation_id or "").strip()
    if not installation_id:
        _log.warning("inbound call refused", route=route, reason="missing_installation_header")
        return Answer.failure("missing_installation_header", 400)
    context: InboundContext | None = None
    if len(installation_id) <= MAX_INSTALLATION_ID_CHARS:
        context = await events.context(installation_id)
    secret = context.inbound_secret if context is not None else None
    verification = verify(
        secrets=[secret if secret is not None else _DUMMY_SECRET],
        timestamp=request.timestamp,
        signature=request.signature,
        body=request.body,
        tolerance_seconds=tolerance_seconds,
    )
    if context is None or secret is None or not verification.ok:
        _log.warning(
            "inbound call refused",
            route=route,
            installation_id=installation_id[:100],
            reason="unknown_installation" if secret is None else verification.reason,
        )
        return Answer.failure("unauthorized", 401)
    return context
