"""The rules that span sections: what sync steps and inbound actions refer to.

A sync step's target, data source and `enabled_when`, and an inbound action's target,
name things declared in `[config_schema]` and `[provisioning]`. Those sections are read
first (the root table's key order), and their values are looked up in the `Context`.
When a section it depends on was itself wrong, a rule stays silent: its problem is
already reported, and a second message about its consequence would only mislead.
With `provisioning.dynamic = true`, the app adds definitions and sources at run time,
so names that are not declared statically are accepted.
"""

from __future__ import annotations

import re
from typing import Final

from sidecar.declaration._common import URL_SEGMENT_PATTERN
from sidecar.declaration._context import Context, Loc, did_you_mean, listing, shown
from sidecar.declaration.model import (
    ConfigSchema,
    CustomDataSpec,
    DataSourceSpec,
    InboundAction,
    SyncStep,
)
from sidecar.shopimind.resources import BULK_RESOURCES, CUSTOM_DATA_CHUNK, CUSTOM_DATA_PREFIX

__all__ = [
    "CONTACTS",
    "TRIGGER_EVENT_PREFIX",
    "check_batch_size",
    "check_data_source",
    "check_enabled_when",
    "check_inbound_target",
    "check_target",
]

TRIGGER_EVENT_PREFIX: Final = "trigger_event:"
CONTACTS: Final = "contacts"
_BULK_LIST: Final = listing(BULK_RESOURCES)


def _dynamic(ctx: Context) -> bool | None:
    return ctx.lookup(("provisioning", "dynamic"), False, bool)


def _declared(ctx: Context, section: str) -> tuple[object, ...] | None:
    return ctx.lookup(("provisioning", section), (), tuple)


def _check_custom_data(target: str, at: Loc, ctx: Context) -> None:
    """`custom_data:<name>` names a declared definition, exactly as declared."""
    name = target[len(CUSTOM_DATA_PREFIX) :]
    if not name.strip():
        ctx.problem(at, "custom_data: needs a definition name, e.g. custom_data:loyalty_cards")
        return
    declared = _declared(ctx, "custom_data")
    if _dynamic(ctx) is not False or declared is None:
        return  # the app may declare it, or the section is already reported
    names = [d.name for d in declared if isinstance(d, CustomDataSpec)]
    if name not in names:
        ctx.problem(
            at,
            f"no custom data definition named {shown(name)} in provisioning.custom_data"
            f"{did_you_mean(name, names)}; declare it there (names must match exactly), or set "
            "provisioning.dynamic = true if your app declares it",
        )


def _chunk_size(target: str) -> int | None:
    if target.startswith(CUSTOM_DATA_PREFIX):
        return CUSTOM_DATA_CHUNK
    resource = BULK_RESOURCES.get(target)
    return resource.chunk_size if resource is not None else None


def check_target(step: SyncStep, at: Loc, ctx: Context) -> None:
    """A sync target is a bulk resource, or `custom_data:<name>` of a declared definition."""
    where = (*at, "target")
    if step.target.startswith(CUSTOM_DATA_PREFIX):
        _check_custom_data(step.target, where, ctx)
    elif step.target not in BULK_RESOURCES:
        ctx.problem(
            where,
            f"unknown bulk resource {shown(step.target)}; expected one of {_BULK_LIST} or "
            f"{CUSTOM_DATA_PREFIX}<name>{did_you_mean(step.target, BULK_RESOURCES)}",
        )


def check_batch_size(step: SyncStep, at: Loc, ctx: Context) -> None:
    """A batch is at most what the target takes per request."""
    chunk = _chunk_size(step.target)
    if step.batch_size is not None and chunk is not None and step.batch_size > chunk:
        ctx.problem(
            (*at, "batch_size"),
            f"must be at most {chunk}, the most ShopiMind takes per request for "
            f"{shown(step.target)}; got {step.batch_size}",
        )


def check_data_source(step: SyncStep, at: Loc, ctx: Context) -> None:
    """Items are tagged with a declared data source (or one the app declares)."""
    declared = _declared(ctx, "data_sources")
    if step.data_source is None or _dynamic(ctx) is not False or declared is None:
        return
    keys = [s.key for s in declared if isinstance(s, DataSourceSpec)]
    if step.data_source not in keys:
        ctx.problem(
            (*at, "data_source"),
            f"no data source {shown(step.data_source)} in provisioning.data_sources"
            f"{did_you_mean(step.data_source, keys)}; declare it there, or set "
            "provisioning.dynamic = true if your app declares it",
        )


def check_enabled_when(step: SyncStep, at: Loc, ctx: Context) -> None:
    """A step is switched on and off by a checkbox of the configuration form."""
    schema = ctx.lookup(("config_schema",), ConfigSchema(), ConfigSchema)
    if step.enabled_when is None or schema is None:
        return
    key, where = step.enabled_when, (*at, "enabled_when")
    field = schema.field(key)
    checkboxes = [f.key for f in schema.all_fields() if f.type == "checkbox"]
    if field is None:
        hint = did_you_mean(key, checkboxes) or (
            f"; its checkbox fields are {listing(checkboxes)}" if checkboxes else ""
        )
        ctx.problem(
            where,
            f"no config field {shown(key)}; enabled_when must name a checkbox field of "
            f"config_schema{hint}",
        )
    elif field.type != "checkbox":
        ctx.problem(
            where,
            f"config field {shown(key)} is a {field.type}; enabled_when must name a checkbox "
            "field (the step runs only while it is checked)",
        )


def check_inbound_target(action: InboundAction, at: Loc, ctx: Context) -> None:
    """An inbound action's target: an event to trigger, contacts, a bulk resource or custom data."""
    target, where = action.target, (*at, "target")
    if target.startswith(TRIGGER_EVENT_PREFIX):
        code = target[len(TRIGGER_EVENT_PREFIX) :]
        if re.fullmatch(URL_SEGMENT_PATTERN, code) is None:
            ctx.problem(
                where,
                "trigger_event: needs the event's code name (letters, digits, '.', '_', '~', "
                "'-'), e.g. trigger_event:acme_sale",
            )
    elif target.startswith(CUSTOM_DATA_PREFIX):
        _check_custom_data(target, where, ctx)
    elif target != CONTACTS and target not in BULK_RESOURCES:
        options = [CONTACTS, *BULK_RESOURCES]
        ctx.problem(
            where,
            f"unknown target {shown(target)}; expected {TRIGGER_EVENT_PREFIX}<code_name>, "
            f"{CONTACTS}, {CUSTOM_DATA_PREFIX}<name> or a bulk resource ({_BULK_LIST})"
            f"{did_you_mean(target, options)}",
        )
