"""`[[sync]]` steps and `[inbound.<action>]` tables (PROTOCOL §5, §8).

A sync step streams one entity from the app to a ShopiMind target; an inbound action
says what `POST /inbound/<action>` does on ShopiMind. What they refer to in other
sections is checked by `_references`.
"""

from __future__ import annotations

from typing import Final, get_args

from sidecar.declaration._common import IDENTIFIER_PATTERN, NONBLANK, URL_SEGMENT
from sidecar.declaration._compound import ArrayOf, MapOf, OneOf
from sidecar.declaration._context import Context, Loc
from sidecar.declaration._nodes import Boolean, Choice, Integer, Number
from sidecar.declaration._record import Key, Record, Rule
from sidecar.declaration._references import (
    check_batch_size,
    check_data_source,
    check_enabled_when,
    check_inbound_target,
    check_target,
)
from sidecar.declaration.model import (
    CursorScope,
    InboundAction,
    InboundMode,
    MaxRatio,
    SourceListing,
    SyncStep,
    TolerateRejects,
)

__all__ = ["INBOUND", "MAX_PAGE_LIMIT", "SYNC"]

MAX_PAGE_LIMIT: Final = 10_000
"""The most items a step may ask the app for in one page."""


def _check_sources(step: SyncStep, at: Loc, ctx: Context) -> None:
    """A per-source step says how its sources are listed; a global step has none."""
    if step.cursor_scope == "per-source" and step.sources is None:
        ctx.problem(
            (*at, "sources"),
            'a per-source step must say how its sources are listed: sources = "app" (your '
            'app answers POST /sources/<entity>) or "data_sources" (one per provisioned '
            "data source)",
        )
    elif step.cursor_scope == "global" and step.sources is not None:
        ctx.problem(
            (*at, "sources"),
            'only per-source steps list sources; remove it or set cursor_scope = "per-source"',
        )


MAX_RATIO: Final = Record[MaxRatio](
    name="MaxRatio",
    description="Advance the cursor while rejected / (accepted + rejected) <= max_ratio.",
    build=MaxRatio,
    keys=(
        Key(
            name="max_ratio",
            node=Number(minimum=0, maximum=1),
            required=True,
            description="From 0 to 1, e.g. 0.01 for 1%.",
        ),
    ),
)

SYNC_STEP: Final = Record[SyncStep](
    name="SyncStep",
    description="One entity streamed from your app (POST /sync/<entity>) to a ShopiMind target.",
    build=SyncStep,
    rules=(
        Rule(check=_check_sources, uses=("cursor_scope", "sources")),
        Rule(check=check_target, uses=("target",)),
        Rule(check=check_batch_size, uses=("target", "batch_size")),
        Rule(check=check_data_source, uses=("data_source",)),
        Rule(check=check_enabled_when, uses=("enabled_when",)),
    ),
    keys=(
        Key(
            name="entity",
            node=URL_SEGMENT,
            required=True,
            description="Your name for the data; your app answers POST /sync/<entity>.",
        ),
        Key(
            name="target",
            node=NONBLANK,
            required=True,
            description="A ShopiMind bulk resource (customers, orders, products…) or "
            "custom_data:<definition name>.",
        ),
        Key(
            name="cursor_scope",
            node=Choice(values=get_args(CursorScope)),
            description="'global' (one cursor) or 'per-source' (one cursor per source).",
        ),
        Key(
            name="sources",
            node=Choice(values=get_args(SourceListing)),
            description="Per-source steps only: 'app' (POST /sources/<entity>) or "
            "'data_sources' (one per provisioned data source).",
        ),
        Key(
            name="data_source",
            node=NONBLANK,
            description="Tag every item with this provisioned data source's id_data_source.",
        ),
        Key(
            name="enabled_when",
            node=NONBLANK,
            description="A checkbox field of config_schema: the step runs only while it is "
            "checked.",
        ),
        Key(
            name="batch_size",
            node=Integer(minimum=1),
            description="Items per push; at most the target's chunk size (the default).",
        ),
        Key(
            name="tolerate_rejects",
            node=OneOf[TolerateRejects](branches=(Boolean(), MAX_RATIO)),
            description="Whether items ShopiMind rejects hold the cursor: false (hold), true "
            "(advance), or { max_ratio = 0.01 }.",
        ),
        Key(
            name="page_limit",
            node=Integer(minimum=1, maximum=MAX_PAGE_LIMIT),
            description="Items asked of your app per page.",
        ),
        Key(
            name="max_pages",
            node=Integer(minimum=1),
            description="Pages per run before the step fails: a source that never ends is "
            "an error, not an endless loop.",
        ),
    ),
)

SYNC: Final = ArrayOf(
    item=SYNC_STEP,
    unique_by=lambda step: step.entity,
    unique_key="entity",
    unique_what="entity",
)

INBOUND_ACTION: Final = Record[InboundAction](
    name="InboundAction",
    description="What POST /inbound/<action> does on ShopiMind.",
    build=InboundAction,
    rules=(Rule(check=check_inbound_target, uses=("target",)),),
    keys=(
        Key(
            name="target",
            node=NONBLANK,
            required=True,
            description="trigger_event:<code_name>, contacts, custom_data:<name>, or a bulk "
            "resource (customers, orders…).",
        ),
        Key(
            name="mode",
            node=Choice(values=get_args(InboundMode)),
            description="'queued' (durable outbox, answered 202 at once) or 'direct' "
            "(answered with ShopiMind's result).",
        ),
    ),
)

INBOUND: Final = MapOf[InboundAction](
    value=INBOUND_ACTION,
    key_pattern=IDENTIFIER_PATTERN,
    key_hint="lower-case letters, digits, '_' and '-' only: it is the <action> of "
    "POST /inbound/<action>",
    name_attribute="name",
)
