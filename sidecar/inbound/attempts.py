"""One delivery attempt of a queued event, and its outcome recorded so it survives anything.

The outcome of an attempt is one transaction (`Outbox.mark_*`), shielded from cancellation
with a deadline inside, like a sync's cursor commit: a cancellation lands either before
it — the event is still pending and is sent again with the same `Idempotency-Key`, which
ShopiMind recognises — or after it. Never half-way. Each outcome is fenced by the
installation's outbox lease: a lane taken over records nothing (`LeaseLostError` ends it,
and the new holder sends the event again under the same key).

    delivered   ShopiMind took it (items it rejected go to the dead-letter with it)
    failed      a transient failure: retried after `RetryPolicy.backoff_seconds(attempts)`,
                or after ShopiMind's `Retry-After` when it asked for longer
    dead        rejected for good (a 4xx, every item rejected, no access token left, an
                unreadable row, a value that can never be encoded, or the same unexpected
                error POISON_AFTER_ATTEMPTS times in a row): copied to the dead-letter with
                the reason, and the events behind it flow on

A failure that is not ShopiMind's answer (an error raised on our side while preparing the
request) is retried like a transient one, but when it comes back the same, attempt after
attempt, the event is poison: it would hold its installation's outbox forever.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Final

from sidecar.clock import Clock, format_timestamp
from sidecar.concurrency import commit
from sidecar.errors import LeaseLostError, SidecarError
from sidecar.inbound.delivery import DeliveryError, deliver
from sidecar.inbound.shapes import Route
from sidecar.logs import BoundLogger, get_logger
from sidecar.outbound import RetryPolicy, scheduled_retry_after
from sidecar.shopimind.client import ShopimindClient
from sidecar.store.interface import Store
from sidecar.store.records import Fence, OutboxEvent, RejectedItemInput

__all__ = ["POISON_AFTER_ATTEMPTS", "STEP_TIMEOUT_SECONDS", "Attempts"]

STEP_TIMEOUT_SECONDS: Final = 10.0
"""How long recording one outcome may take, shielded from cancellation."""
_ERROR_EVERY_ATTEMPTS: Final = 10
POISON_AFTER_ATTEMPTS: Final = 5
"""The same unexpected error this many attempts in a row sets the event aside."""
_REPEATS: Final = re.compile(r"^unexpected error \(x(\d+)\): ")
_MAX_BACKOFF_EXPONENT: Final = 32
"""Beyond it the backoff is long capped anyway (and 2**n would overflow a float)."""

_log = get_logger("outbox")


def _event_log(event: OutboxEvent) -> BoundLogger:
    return _log.bind(installation_id=event.installation_id, event_id=event.id, action=event.action)


class Attempts:
    """Sends an event once and records what came of it."""

    def __init__(
        self, *, store: Store, shopimind: ShopimindClient, clock: Clock, policy: RetryPolicy
    ) -> None:
        self._store = store
        self._shopimind = shopimind
        self._clock = clock
        self._policy = policy

    async def run(
        self, event: OutboxEvent, token: str | None, *, fence: Fence | None = None
    ) -> float | None:
        """Send `event` once and record the outcome: None when it is settled (delivered or
        dead), else the seconds to wait before the next attempt. With `fence` (the
        installation's outbox lease), LeaseLostError when it was lost: nothing recorded."""
        try:
            route = Route.decode(event.route)
            body: object = json.loads(event.payload_json)
        except ValueError as exc:
            await self._dead(event, f"unreadable outbox row: {exc}", (), None, fence)
            return None
        if token is None:
            await self._dead(
                event, "no access token for this installation (uninstalled?)", (), body, fence
            )
            return None
        try:
            sent = await deliver(
                self._shopimind.api(token, installation_id=event.installation_id),
                route,
                body,
                idempotency_key=event.idempotency_key,
            )
        except DeliveryError as exc:
            if exc.permanent:
                await self._dead(event, str(exc), exc.rejected, body, fence)
                return None
            return await self._failed(event, str(exc), fence, exc.retry_after_seconds)
        except Exception as exc:  # noqa: BLE001 - a bug or a bad value must not stall the lane
            cause = f"{type(exc).__name__}: {exc}"[:_MAX_CAUSE_CHARS]
            repeats = _repeats_of(event.last_error, cause) + 1
            if repeats >= POISON_AFTER_ATTEMPTS:
                await self._dead(
                    event,
                    f"failed {repeats} times in a row with the same error: {cause}",
                    (),
                    body,
                    fence,
                )
                return None
            return await self._failed(event, f"unexpected error (x{repeats}): {cause}", fence)
        rejected = sent.rejected
        note = f"{len(rejected)} item(s) rejected; see the dead-letter" if rejected else None
        if await _record(
            lambda: self._store.outbox.mark_delivered(
                event.id, note=note, rejected=rejected, fence=fence
            )
        ):
            _event_log(event).info("inbound event delivered", attempts=event.attempts + 1)
        return None

    async def _dead(
        self,
        event: OutboxEvent,
        error: str,
        rejected: tuple[RejectedItemInput, ...],
        body: object,
        fence: Fence | None,
    ) -> None:
        items = rejected or (RejectedItemInput(item=body, reason=error),)
        if await _record(
            lambda: self._store.outbox.mark_dead(event.id, error=error, rejected=items, fence=fence)
        ):
            _event_log(event).error(
                "inbound event rejected for good; moved to the dead-letter", error=error
            )

    async def _failed(
        self,
        event: OutboxEvent,
        error: str,
        fence: Fence | None,
        retry_after_seconds: float | None = None,
    ) -> float:
        attempts = event.attempts + 1
        delay = self._policy.backoff_seconds(min(attempts, _MAX_BACKOFF_EXPONENT))
        # ShopiMind asked for more patience than the client's retries had: give it.
        delay = max(delay, scheduled_retry_after(retry_after_seconds) or 0.0)
        retry_at = format_timestamp(self._clock() + timedelta(seconds=delay))
        recorded = await _record(
            lambda: self._store.outbox.mark_failed(
                event.id, error=error, retry_at=retry_at, fence=fence
            )
        )
        log = _event_log(event)
        report = log.error if attempts % _ERROR_EVERY_ATTEMPTS == 0 else log.warning
        report(
            "inbound event not delivered; will retry",
            attempts=attempts,
            retry_in_seconds=round(delay, 1),
            error=error,
            recorded=recorded,
        )
        return delay


_MAX_CAUSE_CHARS: Final = 500


def _repeats_of(last_error: str | None, cause: str) -> int:
    """How many attempts in a row ended with the unexpected error `cause` so far."""
    if last_error is None:
        return 0
    found = _REPEATS.match(last_error)
    if found is None or last_error[found.end() :] != cause:
        return 0
    return int(found.group(1))


async def _record(step: Callable[[], Awaitable[bool]]) -> bool:
    """Run one state transition shielded from cancellation, with a deadline; False when it
    did not apply (no longer pending, or the store did not answer in time). A lost lease
    is raised: the lane must end, not go on to the next event."""
    try:
        applied = await commit(
            step, what="an outbox outcome", log=_log, timeout_seconds=STEP_TIMEOUT_SECONDS
        )
    except LeaseLostError:
        raise
    except SidecarError as exc:
        _log.error("cannot record an outbox outcome", error=str(exc))
        return False
    return applied is True
