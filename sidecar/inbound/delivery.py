"""One inbound event sent to ShopiMind, and what its outcome means (PROTOCOL §5, §6).

Shared by both modes: a `direct` call sends in the request and answers with the result;
the outbox sends later, and retries or dead-letters according to `DeliveryError.permanent`:

- transient (retry with backoff): no answer at all, 408, 429, any 5xx, a 2xx that reports
  items `failed`, or anything else unexpected (3xx…);
- permanent (dead-letter with the API's message): any other 4xx — ShopiMind understood
  the request and refuses it; sending it again would be refused again.

A bulk event is one chunk (`shapes` caps it), so it is sent as one POST rather than through
`ShopimindApi.push`, whose per-chunk bookkeeping hides the HTTP status this needs. Items
ShopiMind receives but rejects are not a failure of the event: they are returned to be
kept in the dead-letter. When every item was rejected, nothing was delivered: permanent.

An event that can never be delivered (`shopimind.undeliverable`: a value JSON cannot
write, such as `1e400`) is refused before any request, permanently: a bulk event's
undeliverable items are set aside as rejections and the others sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sidecar.errors import ShopimindError, UpstreamError
from sidecar.inbound.shapes import Route
from sidecar.outbound import RETRYABLE_STATUSES
from sidecar.peer_guard import CircuitOpenError
from sidecar.shopimind.bulk import read_chunk_answer
from sidecar.shopimind.client import ShopimindApi
from sidecar.shopimind.undeliverable import encoding_problem, item_problem, set_aside, storable
from sidecar.store.records import RejectedItemInput

__all__ = ["DeliveryError", "Sent", "deliver", "is_permanent"]

_MAX_REASONS: Final = 20


class DeliveryError(UpstreamError):
    """ShopiMind did not take the event. `permanent`: retrying cannot help (dead-letter it)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        status: int | None = None,
        rejected: Sequence[RejectedItemInput] = (),
        retry_after_seconds: float | None = None,
    ) -> None:
        self.permanent = permanent
        self.status = status
        self.retry_after_seconds = retry_after_seconds
        """ShopiMind's `Retry-After`: the next attempt no sooner than that."""
        self.rejected = tuple(rejected)
        """Items ShopiMind received and refused, when that is why it failed."""
        super().__init__(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    """ShopiMind took the event; `answer` is what a direct call returns to the app."""

    answer: Mapping[str, object]
    rejected: tuple[RejectedItemInput, ...] = ()
    """Items of a bulk event ShopiMind received and refused (for the dead-letter)."""


def is_permanent(status: int | None) -> bool:
    """A 4xx other than 408 and 429: ShopiMind refuses the request itself."""
    return status is not None and 400 <= status < 500 and status not in RETRYABLE_STATUSES


async def _bulk(
    api: ShopimindApi,
    path: str,
    items: Sequence[Mapping[str, object]],
    idempotency_key: str,
) -> Sent:
    sendable, refused = set_aside(items)
    if not sendable:
        raise DeliveryError(
            f"nothing to send to ShopiMind POST /v1/{path}: {refused[0].reason}",
            permanent=True,
            rejected=refused,
        )
    result = await api.post(path, sendable, idempotency_key=idempotency_key)
    answer = read_chunk_answer(result.body, sendable)
    if answer.failed > 0:
        raise DeliveryError(  # a 2xx: no Retry-After to honour
            f"ShopiMind POST /v1/{path}: {answer.failed} item(s) failed in transport",
            permanent=False,
            status=result.status,
        )
    rejected = (*answer.rejected_items, *refused)
    if answer.sent == 0 and answer.rejected > 0:
        reason = rejected[0].reason if rejected else "every item was rejected"
        raise DeliveryError(
            f"ShopiMind POST /v1/{path}: every item was rejected: {reason}",
            permanent=True,
            status=result.status,
            rejected=rejected,
        )
    return Sent(
        answer={
            "sent": answer.sent,
            "rejected": answer.rejected + len(refused),
            "reasons": [item.reason for item in rejected[:_MAX_REASONS]],
        },
        rejected=rejected,
    )


def _retry_after(exc: ShopimindError) -> float | None:
    """ShopiMind's `Retry-After`, or while its circuit is open, the rest of the cool-down:
    an attempt before then would be refused unsent (the outbox's attempts of every
    installation would otherwise each cost a store round trip and a log line, again and
    again, while ShopiMind is down)."""
    cause = exc.__cause__
    if isinstance(cause, CircuitOpenError) and cause.retry_after_seconds is not None:
        return max(cause.retry_after_seconds, exc.retry_after_seconds or 0.0)
    return exc.retry_after_seconds


async def deliver(api: ShopimindApi, route: Route, body: object, *, idempotency_key: str) -> Sent:
    """Send one event to `route` with its `Idempotency-Key`; raise DeliveryError if not taken.

    `body` is what `shapes.prepare` accepted (an object, or a list of items for bulk).
    """
    if route.kind != "bulk":
        problem = encoding_problem(body)
        if problem is not None:
            reason = item_problem(body) or problem
            raise DeliveryError(
                reason,
                permanent=True,
                rejected=(RejectedItemInput(item=storable(body), reason=reason),),
            )
    try:
        if route.kind == "event" and isinstance(body, Mapping):
            data = await api.trigger_event(route.path, body, idempotency_key=idempotency_key)
            return Sent(answer={"data": data})
        if route.kind == "contact" and isinstance(body, Mapping):
            created = await api.upsert_contact(body, idempotency_key=idempotency_key)
            return Sent(answer={"created": created})
        if route.kind == "bulk" and isinstance(body, list):
            items = [item for item in body if isinstance(item, Mapping)]
            if len(items) == len(body) and items:
                return await _bulk(api, route.path, items, idempotency_key)
    except ShopimindError as exc:
        raise DeliveryError(
            str(exc),
            permanent=is_permanent(exc.status),
            status=exc.status,
            retry_after_seconds=_retry_after(exc),
        ) from exc
    # Only a stored row edited by hand (or a bug) gets here: no retry will make it valid.
    raise DeliveryError(
        f"the stored payload does not fit its route {route.encode()!r}", permanent=True
    )
