"""Receiving signed requests from ShopiMind: log first, then check, then process.

Every request reaching a ShopiMind route is written to the webhook log before anything
else (PROTOCOL §1.3), signed or not, with secrets masked twice: by key name, and every
config field the schema declares `sensitive`. An unparseable body is logged as a
placeholder. Only then is the signature's verdict applied — failure reasons go to the
server log, the caller gets an opaque 401 — and the body parsed and checked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.declaration.model import Declaration
from sidecar.lifecycle.answers import Answer
from sidecar.lifecycle.dispatcher import LifecycleDispatcher
from sidecar.logs import get_logger
from sidecar.metrics.hooks import NO_METRICS, UNKNOWN_LABEL, Metrics
from sidecar.payloads import InvalidJsonError, parse_json
from sidecar.security.redaction import redact
from sidecar.security.signature import Verification
from sidecar.store.interface import Store

__all__ = ["Admitted", "WebhookReceiver", "installation_id_of"]

_log = get_logger("webhooks")


class InvalidPayloadError(ValueError):
    """The body is JSON but not the shape of a ShopiMind webhook."""


def installation_id_of(payload: Mapping[str, object]) -> str | None:
    """The installation's opaque id, or the legacy numeric `id_shop_integration` as text.

    Raises InvalidPayloadError when `installation_id` is present but not a string.
    """
    value = payload.get("installation_id")
    if value is not None and not isinstance(value, str):
        raise InvalidPayloadError("installation_id must be a string")
    if value:
        return value
    legacy = payload.get("id_shop_integration")
    if isinstance(legacy, int) and not isinstance(legacy, bool) and legacy > 0:
        return str(legacy)
    if isinstance(legacy, str) and legacy.isascii() and legacy.isdigit():
        return legacy
    return None


_OPTIONAL_TEXT = ("access_token", "shop_domain", "shop_name")


def _check_shape(payload: object) -> tuple[str, str | None, Mapping[str, object]]:
    if not isinstance(payload, dict):
        raise InvalidPayloadError("the body must be a JSON object")
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise InvalidPayloadError("event must be a non-empty string")
    for key in _OPTIONAL_TEXT:
        if payload.get(key) is not None and not isinstance(payload[key], str):
            raise InvalidPayloadError(f"{key} must be a string")
    if payload.get("configs") is not None and not isinstance(payload["configs"], dict):
        raise InvalidPayloadError("configs must be an object")
    return event, installation_id_of(payload), payload


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request that passed the signature check, with its parsed body."""

    payload: object


class WebhookReceiver:
    """The ShopiMind-facing pipeline shared by the lifecycle and config-wizard routes."""

    def __init__(
        self,
        *,
        store: Store,
        declaration: Declaration,
        dispatcher: LifecycleDispatcher,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._store = store
        self._sensitive = declaration.config_schema.sensitive_keys()
        self._dispatcher = dispatcher
        self._metrics = metrics

    def _masked(self, payload: object) -> str:
        return json.dumps(redact(payload, extra_keys=self._sensitive), ensure_ascii=False)

    async def admit(
        self, raw: bytes, verification: Verification, *, route: str
    ) -> Admitted | Answer:
        """Log the request, then apply the signature verdict and parse the body.

        `route` names the request in the log when the body does not (e.g. `test_connection`).
        """
        try:
            payload: object = parse_json(raw)
            masked = self._masked(payload)
        except InvalidJsonError as exc:
            payload = exc
            masked = json.dumps({"unparseable": exc.rule, "bytes": len(raw)})
        event = route
        installation_id: str | None = None
        if isinstance(payload, dict):
            event = payload["event"] if isinstance(payload.get("event"), str) else route
            try:  # the legacy `id_shop_integration` too, when it is the only id
                installation_id = installation_id_of(payload)
            except InvalidPayloadError:
                installation_id = None
        await self._store.webhook_log.append(
            event=event,
            installation_id=installation_id,
            signature_ok=verification.ok,
            payload_json=masked,
        )
        if not verification.ok:
            _log.warning(
                "refused an unsigned or badly signed request",
                route=route,
                reason=verification.reason,
            )
            return Answer.failure("unauthorized", 401)
        if isinstance(payload, InvalidJsonError):
            _log.warning(
                "refused a body that is not acceptable JSON",
                route=route,
                rule=payload.rule,
                reason=str(payload),
            )
            return Answer.invalid_json(payload)
        return Admitted(payload)

    async def log_refused(self, *, route: str, status: int, code: str, length: int | None) -> None:
        """Log a request refused before its body was read (413, 415, 429): "log first"
        holds for it too (PROTOCOL §1.3), without the body, and unverified (no signature
        can be checked without the body it covers)."""
        await self._store.webhook_log.append(
            event=route,
            installation_id=None,
            signature_ok=False,
            payload_json=json.dumps({"refused": code, "status": status, "bytes": length}),
        )

    async def receive(self, raw: bytes, verification: Verification, *, signature: str) -> Answer:
        """`POST /webhook/receive`: log, check, then run the lifecycle event once."""
        answer, event = await self._receive(raw, verification, signature)
        # The outcome is the error code without its detail (`provisioning_failed: …`).
        outcome = "ok" if answer.success else str(answer.body.get("error", "error"))
        self._metrics.webhook(event=event, outcome=outcome.split(":", 1)[0])
        return answer

    async def _receive(
        self, raw: bytes, verification: Verification, signature: str
    ) -> tuple[Answer, str]:
        """The answer, and the event it was about (UNKNOWN_LABEL until it is known)."""
        admitted = await self.admit(raw, verification, route="webhook")
        if isinstance(admitted, Answer):
            return admitted, UNKNOWN_LABEL
        try:
            event, installation_id, payload = _check_shape(admitted.payload)
        except InvalidPayloadError as exc:
            _log.warning("refused a malformed webhook", reason=str(exc))
            return Answer.failure("invalid_payload", 400), UNKNOWN_LABEL
        if not self._dispatcher.knows(event):
            _log.warning("unknown lifecycle event", received_event=event[:100])
            return Answer.failure("unknown_event"), UNKNOWN_LABEL
        answer = await self._dispatcher.dispatch(
            event, installation_id, payload, signature=signature
        )
        return answer, event
