"""What the app may see of a queued event (`GET /inbound/events/{id}`): its delivery state.

Never the payload (the app has it; the answer might be logged by a proxy) and never the
route's internals; the last error is ShopiMind's own message, which the app needs to fix
a rejected event.
"""

from __future__ import annotations

from sidecar.store.records import OutboxEvent

__all__ = ["event_view"]


def event_view(event: OutboxEvent) -> dict[str, object]:
    """The event as the status route shows it.

    `status`: `queued` (not attempted yet), `failed` (a transient failure; retried at
    `next_attempt_at`), `delivered`, or `dead` (rejected for good; in the dead-letter).
    """
    return {
        "id": event.id,
        "action": event.action,
        "status": event.status,
        "attempts": event.attempts,
        "last_error": event.last_error,
        "created_at": event.created_at,
        "updated_at": event.updated_at,
        "next_attempt_at": event.next_attempt_at if event.pending else None,
        "delivered_at": event.delivered_at,
    }
