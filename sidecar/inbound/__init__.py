"""Inbound calls: the vendor's app pushes real-time events to ShopiMind through the sidecar.

service     POST /inbound/{action}, GET /inbound/events/{id}: the pipeline of PROTOCOL §5
auth        installation header, inbound secret, signature (no enumeration oracle)
shapes      the payload each action accepts, and where it goes
keys        dedup key (x-idempotency-key or the signature), upstream Idempotency-Key
delivery    one event sent to ShopiMind; transient or permanent failure
deliverer   the outbox deliverer: in order per installation, retried, never lost
status      what the app sees of a queued event
reveal      the inbound secret shown to an operator, audited
"""

from sidecar.inbound.auth import (
    IDEMPOTENCY_HEADER,
    INSTALLATION_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InboundRequest,
)
from sidecar.inbound.deliverer import OutboxDeliverer
from sidecar.inbound.reveal import InboundSecretUnavailableError, reveal_inbound_secret
from sidecar.inbound.service import (
    INSTALLATION_RATE_BURST,
    INSTALLATION_RATE_PER_SECOND,
    InboundService,
)

__all__ = [
    "IDEMPOTENCY_HEADER",
    "INSTALLATION_HEADER",
    "INSTALLATION_RATE_BURST",
    "INSTALLATION_RATE_PER_SECOND",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "InboundRequest",
    "InboundSecretUnavailableError",
    "InboundService",
    "OutboxDeliverer",
    "reveal_inbound_secret",
]
