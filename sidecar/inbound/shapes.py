"""What each inbound action accepts, and where it goes, checked before anything is stored.

An inbound call is refused at the door when its payload could never be delivered: a queued
event that ShopiMind is bound to reject would only surface hours later as a dead letter,
while the app that sent it is still holding the context to fix it. The shapes, by the
action's declared target:

- `trigger_event:<code>`: a JSON object, sent as the event's body.
- `contacts`: a JSON object with a non-empty `email` (holding an `@`) or `phone` string.
- a bulk resource (`orders`, `customers`…) and `custom_data:<name>`: one item (a non-empty
  JSON object), or `{"items": [item, …]}` — an object whose only key is `items` — with
  1 to the resource's chunk size (PROTOCOL §6: 50 for orders, 20 for custom data…).
  One call is at most one chunk: one request to ShopiMind, one outcome, one retry unit.

Custom data goes to the definition id that provisioning stored for the installation
(`PROVISIONING_IDS`); a definition that was never provisioned is refused, not guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from sidecar.declaration._references import CONTACTS, TRIGGER_EVENT_PREFIX
from sidecar.declaration.model import InboundAction
from sidecar.shopimind.resources import (
    CUSTOM_DATA_CHUNK,
    CUSTOM_DATA_PREFIX,
    chunk_size_for,
    custom_records_path,
)

__all__ = [
    "BATCH_KEY",
    "InvalidPayloadError",
    "NotProvisionedError",
    "Prepared",
    "Route",
    "RouteKind",
    "prepare",
    "resolve_route",
]

BATCH_KEY: Final = "items"

RouteKind = Literal["event", "contact", "bulk"]
_KINDS: Final[dict[str, RouteKind]] = {"event": "event", "contact": "contact", "bulk": "bulk"}


class InvalidPayloadError(ValueError):
    """The payload is not the shape the action accepts; the message says which and why."""


class NotProvisionedError(LookupError):
    """The action's custom data definition has no id for this installation yet."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where an event goes on ShopiMind: an event's code, `contacts`, or a bulk path."""

    kind: RouteKind
    path: str

    def encode(self) -> str:
        """`<kind>:<path>`, as stored with a queued event."""
        return f"{self.kind}:{self.path}"

    @classmethod
    def decode(cls, text: str) -> Route:
        """The route `encode` wrote; ValueError for anything else."""
        name, _, path = text.partition(":")
        kind = _KINDS.get(name)
        if kind is None or not path:
            raise ValueError(f"not an inbound route: {text[:100]!r}")
        return cls(kind, path)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A payload that passed its action's checks: the body to send, and its item count."""

    body: Mapping[str, object] | Sequence[Mapping[str, object]]
    items: int


def _bulk_cap(action: InboundAction) -> int:
    if action.target.startswith(CUSTOM_DATA_PREFIX):
        return CUSTOM_DATA_CHUNK
    size = chunk_size_for(action.target)
    if size is None:  # pragma: no cover - the declaration only admits known resources
        raise InvalidPayloadError(f"{action.target!r} is not a bulk resource")
    return size


def _check_item(item: object, where: str) -> Mapping[str, object]:
    if not isinstance(item, dict) or not item:
        raise InvalidPayloadError(f"{where} must be a non-empty JSON object")
    return item


def _bulk_items(action: InboundAction, payload: object) -> list[Mapping[str, object]]:
    cap = _bulk_cap(action)
    if isinstance(payload, list):
        raise InvalidPayloadError(
            f'send one item as an object, or several as {{"{BATCH_KEY}": [...]}} '
            f"(at most {cap}); a bare JSON array is not accepted"
        )
    if isinstance(payload, dict) and set(payload) == {BATCH_KEY}:
        items = payload[BATCH_KEY]
        if not isinstance(items, list) or not items:
            raise InvalidPayloadError(f"{BATCH_KEY} must be a non-empty array of objects")
        if len(items) > cap:
            raise InvalidPayloadError(
                f"{len(items)} items; {action.target} takes at most {cap} per call"
            )
        return [_check_item(item, f"{BATCH_KEY}[{i}]") for i, item in enumerate(items)]
    return [_check_item(payload, "the item")]


def _contact(payload: object) -> Mapping[str, object]:
    if not isinstance(payload, dict):
        raise InvalidPayloadError("a contact must be a JSON object")
    email, phone = payload.get("email"), payload.get("phone")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise InvalidPayloadError("email must be a string holding an email address")
    if phone is not None and (not isinstance(phone, str) or not phone.strip()):
        raise InvalidPayloadError("phone must be a non-empty string")
    if not email and not phone:
        raise InvalidPayloadError("a contact needs an email or a phone")
    return payload


def prepare(action: InboundAction, payload: object) -> Prepared:
    """Check `payload` against what `action` accepts; raise InvalidPayloadError if it cannot."""
    target = action.target
    if target.startswith(TRIGGER_EVENT_PREFIX):
        if not isinstance(payload, dict):
            raise InvalidPayloadError("an event's payload must be a JSON object")
        return Prepared(payload, 1)
    if target == CONTACTS:
        return Prepared(_contact(payload), 1)
    items = _bulk_items(action, payload)
    return Prepared(items, len(items))


def _definition_id(definition_ids: object, name: str) -> str | int | None:
    if not isinstance(definition_ids, Mapping):
        return None
    value = definition_ids.get(name)
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def resolve_route(action: InboundAction, provisioning_ids: object) -> Route:
    """Where `action` sends its events for one installation, given its provisioning ids
    (`{"defIds": {name: id}}`). Raises NotProvisionedError for an unprovisioned definition."""
    target = action.target
    if target.startswith(TRIGGER_EVENT_PREFIX):
        return Route("event", target[len(TRIGGER_EVENT_PREFIX) :])
    if target == CONTACTS:
        return Route("contact", CONTACTS)
    if target.startswith(CUSTOM_DATA_PREFIX):
        name = target[len(CUSTOM_DATA_PREFIX) :]
        ids = provisioning_ids.get("defIds") if isinstance(provisioning_ids, Mapping) else None
        definition = _definition_id(ids, name)
        if definition is None:
            raise NotProvisionedError(
                f"the custom data definition {name!r} is not provisioned for this installation "
                "(provisioning runs on activation and on each config update)"
            )
        return Route("bulk", custom_records_path(definition))
    return Route("bulk", target)
