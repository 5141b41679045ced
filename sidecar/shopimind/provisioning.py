"""Provisioning: make sure what an integration declares exists on ShopiMind (PROTOCOL §4).

Idempotent find-or-create, run on every activation and configuration update, so it must
converge rather than duplicate: data sources (`sidecar.shopimind.sources`), custom data
definitions (`sidecar.shopimind.definitions`), event types (a 409 means it exists) and
order statuses (one bulk save). Errors are collected per resource and never abort the
plan; the outcome carries the ids that were resolved, which the caller merges into the
installation's stored id map so a failed run never erases what an earlier run found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sidecar.clock import Clock, format_timestamp, system_clock
from sidecar.declaration.model import EventSpec, OrderStatusSpec, ProvisioningPlan
from sidecar.logs import get_logger
from sidecar.shopimind._report import Report
from sidecar.shopimind._wire import ResourceId
from sidecar.shopimind.client import ShopimindApi
from sidecar.shopimind.definition_plan import prepare_definitions
from sidecar.shopimind.definitions import ensure_definitions
from sidecar.shopimind.sources import ensure_sources

__all__ = ["ProvisioningOutcome", "provision"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisioningOutcome:
    """What one provisioning run resolved, and what went wrong along the way."""

    source_ids: dict[str, ResourceId] = field(default_factory=dict)
    """Data source ids by declared `key`."""
    def_ids: dict[str, ResourceId] = field(default_factory=dict)
    """Custom data definition ids by declared `name`."""
    events: int = 0
    """Event types created or found existing."""
    order_statuses: int = 0
    """Order statuses ShopiMind accepted."""
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def provisioned(self) -> int:
        """How many resources were resolved or created."""
        return len(self.source_ids) + len(self.def_ids) + self.events + self.order_statuses

    def to_state(self) -> dict[str, dict[str, ResourceId]]:
        """The id map as stored per installation: `{"sourceIds": {...}, "defIds": {...}}`."""
        return {"sourceIds": dict(self.source_ids), "defIds": dict(self.def_ids)}


def _event_body(spec: EventSpec) -> dict[str, object]:
    body: dict[str, object] = {
        "code_name": spec.code_name,
        "name": spec.name if isinstance(spec.name, str) else dict(spec.name),
    }
    if spec.properties:
        body["properties"] = [dict(p) for p in spec.properties]
    return body


async def _ensure_events(api: ShopimindApi, specs: Sequence[EventSpec], report: Report) -> int:
    done = 0
    for spec in specs:
        with report.collect(f"event '{spec.code_name}'"):
            created = await api.create_event(_event_body(spec))
            report.log.info("event type ready", code_name=spec.code_name, created=created)
            done += 1
    return done


async def _save_order_statuses(
    api: ShopimindApi, specs: Sequence[OrderStatusSpec], report: Report, clock: Clock
) -> int:
    if not specs:
        return 0
    now = format_timestamp(clock())
    items: list[Mapping[str, object]] = [
        {
            "status_id": spec.status_id,
            "lang": spec.lang,
            "name": spec.name,
            "is_deleted": spec.is_deleted,
            "created_at": now,
            "updated_at": now,
        }
        for spec in specs
    ]
    subject = "order statuses"
    saved = 0
    with report.collect(subject):
        result = await api.save_order_statuses(items)
        saved = result.sent
        for error in result.errors:
            report.error(subject, error)
        if result.rejected:
            reasons = "; ".join(
                f"{_status_label(r.item)}: {r.reason}" for r in result.rejected_items
            )
            report.error(
                subject, f"{result.rejected} rejected" + (f" ({reasons})" if reasons else "")
            )
    return saved


def _status_label(item: object) -> str:
    if isinstance(item, Mapping):
        return f"{item.get('status_id')}/{item.get('lang')}"
    return "?"


async def provision(
    api: ShopimindApi, plan: ProvisioningPlan, *, clock: Clock = system_clock
) -> ProvisioningOutcome:
    """Find or create everything in `plan` for `api`'s installation, in §4's order.

    Never raises for one resource's failure: it is in `errors`, and the others go on.
    Custom data definitions are validated before any network call.
    """
    log = get_logger("provisioning")
    if api.installation_id is not None:
        log = log.bind(installation_id=api.installation_id)
    report = Report(log)
    definitions = prepare_definitions(plan.custom_data)
    for problem in definitions.errors:
        report.errors.append(problem)
        log.warning("provisioning error", error=problem)
    source_ids = await ensure_sources(api, plan.data_sources, report)
    def_ids = await ensure_definitions(api, definitions, report)
    events = await _ensure_events(api, plan.events, report)
    statuses = await _save_order_statuses(api, plan.order_statuses, report, clock)
    outcome = ProvisioningOutcome(
        source_ids=source_ids,
        def_ids=def_ids,
        events=events,
        order_statuses=statuses,
        errors=tuple(report.errors),
        warnings=tuple(report.warnings),
    )
    log.info(
        "provisioning done",
        provisioned=outcome.provisioned,
        errors=len(outcome.errors),
        warnings=len(outcome.warnings),
    )
    return outcome
