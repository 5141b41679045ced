"""Replaying dead-lettered items: pushing them to ShopiMind again, one by one.

An item rejected by ShopiMind lands in the dead-letter (a sync page's item, or an
inbound event). Once the cause is fixed (a definition corrected, a field added on the
app's side), an operator replays it: each item goes to where it went first —

    a sync entity's item      the step's target (bulk resource or custom data, tagged
                              with its data source), as a list of one
    an inbound event          the action's route: the event itself, or its items

— with a fresh `Idempotency-Key` (the rejected request's key would return the same
refusal). Items one at a time, so each has its own outcome: `accepted` leaves the
dead-letter, `rejected` stays with ShopiMind's new reason, `failed` (no answer, a 5xx,
a target that is not provisioned) stays as it was.

An item set aside because it could never be encoded (`shopimind.undeliverable`) was kept
with its poison replaced by a description: replaying it is refused with the reason it was
set aside. Other set-aside items are checked again against today's rules, so one whose
definition changed since is pushed.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from sidecar.admin.views import parse_stored
from sidecar.declaration.model import Declaration
from sidecar.errors import ShopimindError
from sidecar.inbound.delivery import DeliveryError, deliver
from sidecar.inbound.shapes import NotProvisionedError, resolve_route
from sidecar.shopimind.client import ShopimindApi
from sidecar.shopimind.undeliverable import ENCODING_PREFIX
from sidecar.store.records import INBOUND_ENTITY_PREFIX, RejectedItem
from sidecar.sync.targets import ProvisionedIds, StepSetupError, item_rules, push_target

__all__ = ["MAX_REPLAY_ITEMS", "ItemOutcome", "ReplayReport", "replay_items"]

MAX_REPLAY_ITEMS: Final = 500
"""Items replayed by one action at most (the dead-letter keeps 500 per run)."""

Outcome = Literal["accepted", "rejected", "failed"]


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """What became of one replayed item."""

    id: int
    outcome: Outcome
    reason: str | None = None


@dataclass(slots=True)
class ReplayReport:
    """The outcome of every replayed item."""

    items: list[ItemOutcome] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        """How many items ended so."""
        return sum(1 for item in self.items if item.outcome == outcome)

    def accepted_ids(self) -> list[int]:
        """The items ShopiMind took: they leave the dead-letter."""
        return [item.id for item in self.items if item.outcome == "accepted"]

    def counts(self) -> dict[str, int]:
        """`{"accepted": n, "rejected": n, "failed": n}`."""
        return {o: self.count(o) for o in ("accepted", "rejected", "failed")}


def _fresh_key(item: RejectedItem) -> str:
    return f"replay-{item.id}-{secrets.token_hex(8)}"


async def _replay_inbound(
    item: RejectedItem, declaration: Declaration, ids: object, api: ShopimindApi
) -> ItemOutcome:
    action_name = item.entity[len(INBOUND_ENTITY_PREFIX) :]
    action = declaration.inbound.get(action_name)
    if action is None:
        return ItemOutcome(item.id, "failed", f"inbound action {action_name!r} is not declared")
    try:
        route = resolve_route(action, ids)
    except NotProvisionedError as exc:
        return ItemOutcome(item.id, "failed", str(exc))
    value = parse_stored(item.item_json)
    body: object = value
    if route.kind == "bulk" and isinstance(value, Mapping):
        body = [value]
    try:
        sent = await deliver(api, route, body, idempotency_key=_fresh_key(item))
    except DeliveryError as exc:
        return ItemOutcome(item.id, "rejected" if exc.permanent else "failed", str(exc))
    if sent.rejected:
        return ItemOutcome(item.id, "rejected", sent.rejected[0].reason)
    return ItemOutcome(item.id, "accepted")


async def _replay_synced(
    item: RejectedItem, declaration: Declaration, ids: ProvisionedIds, api: ShopimindApi
) -> ItemOutcome:
    step = next((s for s in declaration.sync if s.entity == item.entity), None)
    if step is None:
        return ItemOutcome(item.id, "failed", f"sync entity {item.entity!r} is not declared")
    value = parse_stored(item.item_json)
    if not isinstance(value, Mapping):
        return ItemOutcome(item.id, "failed", "the stored item is not a JSON object")
    try:
        target = push_target(step, item.source_key, ids, api, rules=item_rules(declaration, step))
        result = await target.push([value], key=_fresh_key(item))
    except StepSetupError as exc:
        return ItemOutcome(item.id, "failed", str(exc))
    except ShopimindError as exc:
        return ItemOutcome(item.id, "failed", str(exc))
    if result.transport_failed:
        return ItemOutcome(item.id, "failed", "; ".join(result.errors) or "not delivered")
    if result.rejected:
        reason = result.rejected_items[0].reason if result.rejected_items else "rejected"
        return ItemOutcome(item.id, "rejected", reason)
    return ItemOutcome(item.id, "accepted")


async def replay_items(
    items: Sequence[RejectedItem],
    *,
    declaration: Declaration,
    provisioning_ids: object,
    api: ShopimindApi,
) -> ReplayReport:
    """Push each item again (at most MAX_REPLAY_ITEMS); report each outcome. Never raises
    for ShopiMind's answers: they are the outcomes."""
    report = ReplayReport()
    ids = ProvisionedIds.from_state(provisioning_ids)
    for item in items[:MAX_REPLAY_ITEMS]:
        if ENCODING_PREFIX in item.reason:
            outcome = ItemOutcome(item.id, "rejected", item.reason)
        elif item.entity.startswith(INBOUND_ENTITY_PREFIX):
            outcome = await _replay_inbound(item, declaration, provisioning_ids, api)
        else:
            outcome = await _replay_synced(item, declaration, ids, api)
        report.items.append(outcome)
    return report
