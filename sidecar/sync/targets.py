"""Where a sync step's items go on ShopiMind, and which sources it covers.

Ids come from the installation's provisioning state (`{"sourceIds", "defIds"}`). Pushing
to something that was not provisioned is a step error, never a silent push (PROTOCOL §8).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sidecar.bridge import AppBridge
from sidecar.declaration.model import Declaration, SyncStep, custom_data_key
from sidecar.errors import BridgeError
from sidecar.shopimind.bulk import BulkResult
from sidecar.shopimind.client import ShopimindApi
from sidecar.shopimind.undeliverable import NO_RULES, FieldRule, ItemRules, set_aside

__all__ = [
    "ProvisionedIds",
    "PushTarget",
    "StepSetupError",
    "item_rules",
    "push_target",
    "step_sources",
]


class StepSetupError(Exception):
    """A step cannot run: its sources cannot be listed, or its target is not provisioned."""


@dataclass(frozen=True, slots=True)
class ProvisionedIds:
    """The ids provisioning resolved for an installation."""

    source_ids: Mapping[str, object] = field(default_factory=dict)
    def_ids: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_state(cls, value: object) -> ProvisionedIds:
        """Read the stored `{"sourceIds": {...}, "defIds": {...}}` (anything else: empty)."""
        if not isinstance(value, Mapping):
            return cls()
        sources, definitions = value.get("sourceIds"), value.get("defIds")
        return cls(
            source_ids=dict(sources) if isinstance(sources, Mapping) else {},
            def_ids=dict(definitions) if isinstance(definitions, Mapping) else {},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PushTarget:
    """Pushes one step's items (one source's) to ShopiMind."""

    api: ShopimindApi
    step: SyncStep
    data_source_id: object | None
    definition_id: object | None
    concurrency: int = 1
    """Chunks of a page in flight at once (PUSH_CONCURRENCY)."""
    rules: ItemRules = NO_RULES
    """What each item must satisfy; one that cannot (`undeliverable`) is rejected unsent."""

    def describe(self) -> str:
        """The target, for logs and summaries."""
        return self.step.target

    async def push(self, items: Sequence[Mapping[str, object]], *, key: str) -> BulkResult:
        """Push `items` (tagged with the data source when there is one), in chunks, at most
        `concurrency` in flight; the result comes once every chunk is answered.

        `key` identifies this page of this run: it makes the chunks' idempotency keys, so a
        chunk retried after a 429 or a 503 is never stored twice. An item that can never be
        delivered is not sent: it comes back as a rejection, like ShopiMind's own.
        """
        items, refused = set_aside(items, self.rules)
        set_aside_result = BulkResult(rejected=len(refused), rejected_items=refused)
        if not items:
            return set_aside_result
        if self.data_source_id is not None:
            items = [{**item, "id_data_source": self.data_source_id} for item in items]
        idempotency_key = "sync-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
        if self.definition_id is not None:
            pushed = await self.api.push_custom_records(
                str(self.definition_id),
                items,
                chunk_size=self.step.batch_size,
                idempotency_key=idempotency_key,
                concurrency=self.concurrency,
            )
        else:
            pushed = await self.api.push(
                self.step.target,
                items,
                chunk_size=self.step.batch_size,
                idempotency_key=idempotency_key,
                concurrency=self.concurrency,
            )
        return pushed + set_aside_result


def item_rules(declaration: Declaration, step: SyncStep) -> ItemRules:
    """The rules of the step's target: a custom data definition's fields, as declared."""
    name = step.custom_data_name
    if name is None:
        return NO_RULES
    for spec in declaration.provisioning.plan.custom_data:
        if custom_data_key(spec.name) == custom_data_key(name):
            return ItemRules(
                fields=tuple(
                    FieldRule(name=f.name, type=f.type, required=f.required) for f in spec.fields
                )
            )
    return NO_RULES  # defined by the app's dynamic plan: ShopiMind will judge


def push_target(
    step: SyncStep,
    source_key: str,
    ids: ProvisionedIds,
    api: ShopimindApi,
    *,
    rules: ItemRules = NO_RULES,
    concurrency: int = 1,
) -> PushTarget:
    """The target of `step` for `source_key`; StepSetupError when it was not provisioned."""
    definition_id: object | None = None
    if step.custom_data_name is not None:
        definition_id = ids.def_ids.get(step.custom_data_name)
        if definition_id is None:
            raise StepSetupError(
                f"custom data definition {step.custom_data_name!r} is not provisioned"
            )
    source_name = source_key if step.sources == "data_sources" else step.data_source
    data_source_id: object | None = None
    if source_name is not None:
        data_source_id = ids.source_ids.get(source_name)
        if data_source_id is None:
            raise StepSetupError(f"data source {source_name!r} is not provisioned")
    return PushTarget(
        api=api,
        step=step,
        data_source_id=data_source_id,
        definition_id=definition_id,
        concurrency=concurrency,
        rules=rules,
    )


async def step_sources(
    step: SyncStep,
    *,
    bridge: AppBridge,
    installation_id: str,
    settings: Mapping[str, object],
    ids: ProvisionedIds,
) -> tuple[str, ...]:
    """The source keys the step covers this run: "" for a global step, else its list."""
    if step.cursor_scope == "global":
        return ("",)
    if step.sources == "data_sources":
        if not ids.source_ids:
            raise StepSetupError(f"{step.entity}: no provisioned data sources to sync")
        return tuple(ids.source_ids)
    if step.sources == "app":
        try:
            return await bridge.sources(
                step.entity, installation_id=installation_id, settings=settings
            )
        except BridgeError as exc:
            raise StepSetupError(f"{step.entity}: listing the sources failed: {exc}") from exc
    raise StepSetupError(f"{step.entity}: a per-source step needs `sources` (app or data_sources)")
