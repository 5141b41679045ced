"""What the public and the admin routes call, built at the start without any web framework:
the quart apps that route to them are built at their first request (`sidecar.web.front`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from sidecar.admin.service import AdminService
from sidecar.client_address import Network
from sidecar.inbound import InboundService
from sidecar.lifecycle.webhooks import WebhookReceiver
from sidecar.lifecycle.wizard import ConfigWizard
from sidecar.security.tokens import TokenMatcher
from sidecar.store.interface import Store
from sidecar.web.rate_limit import RateLimiter

__all__ = [
    "ADMIN_RATE_BURST",
    "ADMIN_RATE_PER_SECOND",
    "INBOUND_BODY_LIMIT",
    "INBOUND_IP_RATE_BURST",
    "INBOUND_IP_RATE_PER_SECOND",
    "METRICS_CONTENT_TYPE",
    "PUBLIC_RATE_BURST",
    "PUBLIC_RATE_PER_SECOND",
    "AdminContext",
    "PublicContext",
]

PUBLIC_RATE_BURST = 60
PUBLIC_RATE_PER_SECOND = 10.0
# The vendor's app usually calls from one address for all its shops, each with its own
# bucket after the signature (PROTOCOL §5): this per-IP bucket, before any HMAC, is sized
# for the front end's capacity (~1,000 requests/s), so it only refuses a flood.
INBOUND_IP_RATE_BURST = 2000
INBOUND_IP_RATE_PER_SECOND = 1000.0
INBOUND_BODY_LIMIT: Final = 64 * 1024
"""The largest body of an inbound call (PROTOCOL §5), in bytes."""
ADMIN_RATE_BURST: Final = 10
ADMIN_RATE_PER_SECOND: Final = 1.0
METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def _inbound_limiter() -> RateLimiter:
    # The constants read when a context is built (a test or benchmark may change them).
    return RateLimiter(burst=INBOUND_IP_RATE_BURST, per_second=INBOUND_IP_RATE_PER_SECOND)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicContext:
    """What the public routes call."""

    store: Store
    receiver: WebhookReceiver
    wizard: ConfigWizard
    manifest: Mapping[str, object]
    webhook_secrets: Callable[[], Sequence[str]]
    """Read at each request, so a SIGHUP rotation takes effect at once."""
    tolerance_seconds: int
    limiter: RateLimiter
    inbound: InboundService | None = None
    """The inbound routes exist only with it."""
    inbound_limiter: RateLimiter = field(default_factory=_inbound_limiter)
    """Per client IP, before any HMAC; INBOUND_IP_RATE_BURST/…_PER_SECOND by default."""
    scheduled: bool = True
    """False when the scheduler is off: then /health expects no recent runs."""
    ready: Callable[[], bool] = lambda: True
    """True once every part runs, False again when stopping (GET /ready)."""
    app_health: Callable[[], str | None] = lambda: None
    """The vendor app's probed health for /health (`AppHealth.state`); None: not probed."""
    circuits: Callable[[], Mapping[str, str]] = dict
    """The circuit breaker of each peer (`PeerGuard.state`) for /health."""
    trusted_proxies: tuple[Network, ...] = ()
    """TRUSTED_PROXIES: whose X-Forwarded-For names the client (rate limits, logs)."""
    replica_id: str | None = None
    """REPLICA_ID, for /health's `replicas` (None: not shown)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminContext:
    """What the admin routes call."""

    service: AdminService
    token: TokenMatcher | None
    """None when ADMIN_TOKEN is not set: then every admin request is refused."""
    limiter: RateLimiter
    metrics: Callable[[], Awaitable[bytes]] | None = None
    """Renders `/metrics`; without it the route answers 404."""
    readonly_token: TokenMatcher | None = None
    """ADMIN_READONLY_TOKEN: signs in to the console to look, never to act."""
    session_idle_seconds: float = 1800.0
    """How long a console session lives without use."""
    cookie_secure: bool = False
    """Mark the console's cookie Secure even over plain HTTP (TLS ends at a proxy)."""
    trusted_proxies: tuple[Network, ...] = ()
    """TRUSTED_PROXIES: whose X-Forwarded-For names the client (limit, audit)."""
