"""`POST /inbound/{action}` and `GET /inbound/events/{id}`: the pipeline of PROTOCOL §5.

In this order, each step cheaper than the next and none storing anything before the last:

    installation header      400 missing_installation_header
    inbound secret, HMAC     401 unauthorized (unknown installations pay the same HMAC)
    token bucket per inst.   429 rate_limited (burst 20, 5/s)
    declared action          404 unknown_action
    JSON body                400 invalid_json
    payload shape            400 invalid_payload / invalid_idempotency_key, with a reason
    usable installation      409 no_context (not active, or no access token)
    provisioned definition   409 not_provisioned, with a reason (custom data only)
    dedup claim              200 {"success": true, "replayed": true} for a known key

then `queued` (the default): the outbox row is written in the claim's transaction and
the deliverer woken: `202 {"success": true, "id": <event id>}`; or `direct`: ShopiMind is
called now: `200 {"success": true, …its result}`, or `500 internal_error` with the claim
marked `failed`, so an identical retry runs again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sidecar.concurrency import commit
from sidecar.declaration.model import Declaration, InboundAction
from sidecar.inbound.auth import InboundRequest, authenticate
from sidecar.inbound.delivery import DeliveryError, deliver
from sidecar.inbound.keys import InvalidIdempotencyKeyError, dedup_key, upstream_idempotency_key
from sidecar.inbound.shapes import (
    InvalidPayloadError,
    NotProvisionedError,
    Prepared,
    Route,
    prepare,
    resolve_route,
)
from sidecar.inbound.status import event_view
from sidecar.lifecycle.answers import Answer
from sidecar.logs import BoundLogger, get_logger
from sidecar.metrics.hooks import NO_METRICS, UNKNOWN_LABEL, Metrics
from sidecar.payloads import InvalidJsonError, parse_json
from sidecar.security.signature import DEFAULT_TOLERANCE_SECONDS
from sidecar.shopimind.client import ShopimindClient
from sidecar.shopimind.resources import CUSTOM_DATA_PREFIX
from sidecar.state_keys import ACCESS_TOKEN, PROVISIONING_IDS
from sidecar.store.interface import Store
from sidecar.store.records import INBOUND_ENTITY_PREFIX, InboundContext, OutboxEntry

__all__ = ["INSTALLATION_RATE_BURST", "INSTALLATION_RATE_PER_SECOND", "InboundService"]

_log = get_logger("inbound")
_FINISH_TIMEOUT_SECONDS: Final = 10.0


INSTALLATION_RATE_BURST: Final = 20
INSTALLATION_RATE_PER_SECOND: Final = 5.0
"""The per-installation token bucket of PROTOCOL §5."""


@dataclass(frozen=True, slots=True)
class _Ready:
    """A call that passed every check: what to store or send."""

    installation_id: str
    action: InboundAction
    prepared: Prepared
    route: Route
    dedup_key: str


class InboundService:
    """The inbound rules, behind the two routes."""

    def __init__(
        self,
        *,
        store: Store,
        declaration: Declaration,
        shopimind: ShopimindClient,
        wake_deliverer: Callable[[str], None],
        allow_installation: Callable[[str], bool],
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        """`shopimind` serves `direct` actions (the app waits: give it a short policy);
        `wake_deliverer` is called after an event is queued; `allow_installation` spends a
        token of the installation's bucket (INSTALLATION_RATE_BURST, …_PER_SECOND), e.g.
        `RateLimiter.allow`."""
        self._store = store
        self._actions = declaration.inbound
        self._shopimind = shopimind
        self._wake = wake_deliverer
        self._tolerance = tolerance_seconds
        self._allow = allow_installation
        self._metrics = metrics

    async def _admit(
        self, request: InboundRequest, route: str, *, bucket: str = ""
    ) -> InboundContext | Answer:
        """Authenticate, then spend one token of the installation's bucket (`bucket` names
        a separate one: status lookups do not eat into the calls' budget)."""
        admitted = await authenticate(
            self._store.inbound_events, request, route=route, tolerance_seconds=self._tolerance
        )
        if isinstance(admitted, Answer):
            return admitted
        if not self._allow(bucket + admitted.installation_id):
            _log.warning(
                "inbound call refused",
                route=route,
                installation_id=admitted.installation_id,
                reason="rate_limited",
            )
            return Answer.failure("rate_limited", 429)
        return admitted

    async def receive(self, action_name: str, request: InboundRequest) -> Answer:
        """`POST /inbound/{action}`: the whole pipeline; never raises for a bad request."""
        answer = await self._receive(action_name, request)
        # Only declared actions name a series: the path is the caller's to choose.
        label = action_name if action_name in self._actions else UNKNOWN_LABEL
        self._metrics.inbound_call(action=label, status=answer.status)
        return answer

    async def _receive(self, action_name: str, request: InboundRequest) -> Answer:
        admitted = await self._admit(request, f"inbound:{action_name[:64]}")
        if isinstance(admitted, Answer):
            return admitted
        log = _log.bind(installation_id=admitted.installation_id, action=action_name[:64])
        action = self._actions.get(action_name)
        if action is None:
            log.warning("inbound call refused", reason="unknown_action")
            return Answer.failure("unknown_action", 404)
        ready = await self._check(admitted, action, request, log)
        if isinstance(ready, Answer):
            return ready
        if action.mode == "direct":
            return await self._direct(ready, log)
        return await self._queue(ready, log)

    async def _check(
        self,
        context: InboundContext,
        action: InboundAction,
        request: InboundRequest,
        log: BoundLogger,
    ) -> _Ready | Answer:
        try:
            payload = parse_json(request.body)
        except InvalidJsonError as exc:
            log.warning("inbound call refused", reason="invalid_json", rule=exc.rule)
            return Answer.invalid_json(exc)
        try:
            prepared = prepare(action, payload)
            key = dedup_key(action.name, request.signature or "", request.idempotency_key)
        except InvalidPayloadError as exc:
            log.warning("inbound call refused", reason="invalid_payload", detail=str(exc))
            return _refusal(400, "invalid_payload", str(exc))
        except InvalidIdempotencyKeyError as exc:
            return _refusal(400, "invalid_idempotency_key", str(exc))
        installation_id = context.installation_id
        # Usable: active, with an access token — ShopiMind can be called on its behalf.
        if context.status != "active" or not context.has_access_token:
            log.warning("inbound call refused", reason="no_context")
            return Answer.failure("no_context", 409)
        try:
            ids = (
                await self._store.state.get_json(installation_id, PROVISIONING_IDS)
                if action.target.startswith(CUSTOM_DATA_PREFIX)
                else None
            )
            route = resolve_route(action, ids)
        except NotProvisionedError as exc:
            log.warning("inbound call refused", reason="not_provisioned")
            return _refusal(409, "not_provisioned", str(exc))
        return _Ready(installation_id, action, prepared, route, key)

    async def _queue(self, ready: _Ready, log: BoundLogger) -> Answer:
        claim = await self._store.outbox.enqueue(
            OutboxEntry(
                installation_id=ready.installation_id,
                dedup_key=ready.dedup_key,
                action=ready.action.name,
                target=ready.action.target,
                route=ready.route.encode(),
                payload_json=json.dumps(ready.prepared.body, ensure_ascii=False),
                idempotency_key=upstream_idempotency_key(ready.installation_id, ready.dedup_key),
            )
        )
        if not claim.fresh:
            log.info("inbound call replayed", event_id=claim.id, status=claim.status)
            extra = {"id": claim.id} if claim.queued else {}
            return Answer.ok(replayed=True, **extra)
        self._wake(ready.installation_id)
        log.debug("inbound event queued", event_id=claim.id, items=ready.prepared.items)
        return Answer(202, {"success": True, "id": claim.id})

    async def _direct(self, ready: _Ready, log: BoundLogger) -> Answer:
        events = self._store.inbound_events
        iid = ready.installation_id
        claim = await events.claim(iid, ready.dedup_key, ready.action.name)
        if not claim.fresh and not (claim.status == "failed" and await events.retake(claim.id)):
            log.info("inbound call replayed", event_id=claim.id, status=claim.status)
            return Answer.ok(replayed=True)
        error: str | None = "interrupted"
        try:
            token = await self._store.state.get(iid, ACCESS_TOKEN)
            if token is None:
                raise DeliveryError("no access token", permanent=False)
            sent = await deliver(
                self._shopimind.api(token, installation_id=iid),
                ready.route,
                ready.prepared.body,
                idempotency_key=upstream_idempotency_key(iid, ready.dedup_key),
            )
            error = None
        except DeliveryError as exc:
            error = str(exc)
            log.warning("direct inbound call failed", event_id=claim.id, error=error)
            return Answer.failure("internal_error", 500)
        except Exception as exc:  # the handler raised: 500, and a retry runs again
            error = f"{type(exc).__name__}: {exc}"
            log.exception("direct inbound call failed", event_id=claim.id)
            return Answer.failure("internal_error", 500)
        finally:
            # Shielded: a call cut short (the app hung up) must still leave the claim
            # `failed`, or the app's retry would be answered "replayed" and never run.
            await commit(
                lambda: events.finish(claim.id, "failed" if error else "done", error),
                what="an inbound claim's outcome",
                log=log,
                timeout_seconds=_FINISH_TIMEOUT_SECONDS,
            )
        if sent.rejected:
            await self._store.dead_letter.add(
                iid,
                run_id=None,
                entity=INBOUND_ENTITY_PREFIX + ready.action.name,
                source_key="",
                target=ready.action.target,
                items=sent.rejected,
            )
        log.info("direct inbound call done", event_id=claim.id, rejected=len(sent.rejected))
        return Answer.ok(**sent.answer)

    async def event_status(self, event_id: int, request: InboundRequest) -> Answer:
        """`GET /inbound/events/{id}`: signed like a POST (over an empty body); an event of
        another installation is as unknown as one that does not exist (404)."""
        admitted = await self._admit(request, "inbound:status", bucket="status:")
        if isinstance(admitted, Answer):
            return admitted
        event = await self._store.outbox.get(event_id)
        if event is None or event.installation_id != admitted.installation_id:
            return Answer.failure("not_found", 404)
        return Answer.ok(event=event_view(event))


def _refusal(status: int, code: str, reason: str) -> Answer:
    return Answer(status, {"success": False, "error": code, "reason": reason})
