"""`[provisioning]`: what must exist on ShopiMind for an installation (PROTOCOL §4).

The same nodes read the static plan of `integration.toml` and the dynamic plan the app
answers to `POST /provisioning`, so both obey the same rules, checked before any network
call: unique keys, parents declared earlier, stable keys present in the config (custom
data definitions have their own module). A dynamic plan is appended to the static one
(`Context.base`): it may refer to the static plan's sources, and must not declare them
again.
"""

from __future__ import annotations

from typing import Final

from sidecar.declaration._common import LOCALIZED, NONBLANK, URL_SEGMENT
from sidecar.declaration._compound import ArrayOf, OneOf
from sidecar.declaration._context import Context, Loc, listing, shown
from sidecar.declaration._custom_data import CUSTOM_DATA_LIST
from sidecar.declaration._nodes import Boolean, Integer, JsonObject
from sidecar.declaration._record import Key, Record, Rule
from sidecar.declaration.model import (
    DataSourceSpec,
    EventSpec,
    OrderStatusSpec,
    Provisioning,
    ProvisioningPlan,
)

__all__ = ["PLAN", "PROVISIONING"]


def _check_stable_key(source: DataSourceSpec, at: Loc, ctx: Context) -> None:
    if source.stable_key is not None and source.stable_key not in source.config:
        ctx.problem(
            (*at, "stable_key"),
            f"{shown(source.stable_key)} is not a key of this source's `config` table; "
            f"stable_key names the config entry that identifies the source "
            f"(config has: {listing(source.config) or 'no key'})",
        )


def _check_sources(sources: tuple[DataSourceSpec, ...], at: Loc, ctx: Context) -> None:
    """Keys not already in the base plan; a parent is a source declared earlier."""
    static = {source.key for source in ctx.base.data_sources}
    positions = {source.key: i for i, source in reversed(list(enumerate(sources)))}
    known = set(static)
    for i, source in enumerate(sources):
        if source.key in static:
            ctx.problem((*at, i, "key"), f"{shown(source.key)} is already a static data source")
        parent = source.parent
        if parent is not None and parent not in known:
            later = positions.get(parent, -1)
            reason = (
                "a source cannot be its own parent"
                if parent == source.key
                else f"{shown(parent)} is declared later (data_sources[{later}]); "
                "move the parent before its children"
                if later > i
                else f"no data source {shown(parent)} is declared before this one; "
                "parent must name the key of an earlier source"
            )
            ctx.problem((*at, i, "parent"), reason)
        known.add(source.key)


DATA_SOURCE: Final = Record[DataSourceSpec](
    name="DataSourceSpec",
    description="A data source to find or create (matched on config[stable_key], else on "
    "its label).",
    build=DataSourceSpec,
    rules=(Rule(check=_check_stable_key, uses=("stable_key", "config")),),
    keys=(
        Key(name="key", node=NONBLANK, required=True, description="Your name for it."),
        Key(name="label", node=NONBLANK, required=True, description="Its name on ShopiMind."),
        Key(name="type", node=NONBLANK, required=True, description="Its type on ShopiMind."),
        Key(name="parent", node=NONBLANK, description="The key of an earlier source."),
        Key(name="config", node=JsonObject(), description="Sent to ShopiMind as a JSON string."),
        Key(
            name="stable_key",
            node=NONBLANK,
            description="The config entry that identifies the source: a renamed source is "
            "found again, never duplicated.",
        ),
    ),
)

EVENT: Final = Record[EventSpec](
    name="EventSpec",
    description="A custom event type (one that exists already is fine).",
    build=EventSpec,
    keys=(
        Key(
            name="code_name",
            node=URL_SEGMENT,
            required=True,
            description="Its code; inbound targets use trigger_event:<code_name>.",
        ),
        Key(name="name", node=LOCALIZED, required=True, description="What the merchant sees."),
        Key(
            name="properties",
            node=ArrayOf(item=JsonObject()),
            description="Its properties, passed to ShopiMind as given.",
        ),
    ),
)

ORDER_STATUS: Final = Record[OrderStatusSpec](
    name="OrderStatusSpec",
    description="An order status, saved with the others in one bulk call.",
    build=OrderStatusSpec,
    keys=(
        Key(
            name="status_id",
            node=OneOf[str | int](branches=(NONBLANK, Integer())),
            required=True,
            description="Your id for it: a string or an integer.",
        ),
        Key(name="lang", node=NONBLANK, required=True, description="Language, e.g. 'fr'."),
        Key(name="name", node=NONBLANK, required=True, description="Its name in that language."),
        Key(name="is_deleted", node=Boolean(), description="Mark it deleted."),
    ),
)

PLAN_KEYS: Final = (
    Key(
        name="data_sources",
        node=ArrayOf(
            item=DATA_SOURCE,
            unique_by=lambda source: source.key,
            unique_key="key",
            unique_what="data source key",
            checks=(_check_sources,),
        ),
        description="Data sources, parents first.",
    ),
    Key(
        name="custom_data",
        node=CUSTOM_DATA_LIST,
        description="Custom data definitions.",
    ),
    Key(
        name="events",
        node=ArrayOf(
            item=EVENT,
            unique_by=lambda event: event.code_name,
            unique_key="code_name",
            unique_what="event code name",
        ),
        description="Custom event types.",
    ),
    Key(
        name="order_statuses",
        node=ArrayOf(item=ORDER_STATUS),
        description="Order statuses.",
    ),
)

PLAN: Final = Record[ProvisioningPlan](
    name="ProvisioningPlan",
    description="What to make sure exists on ShopiMind for an installation.",
    build=ProvisioningPlan,
    keys=PLAN_KEYS,
)


def _provisioning(*, dynamic: bool = False, **plan: tuple[object, ...]) -> Provisioning:
    return Provisioning(plan=PLAN.build(**plan), dynamic=dynamic)


PROVISIONING: Final = Record[Provisioning](
    name="Provisioning",
    description="The static provisioning plan, run on activation and on every config update.",
    build=_provisioning,
    keys=(
        Key(
            name="dynamic",
            node=Boolean(),
            description="Also ask your app for more (POST /provisioning), e.g. one data source "
            "per store; its answer has this table's shape, without `dynamic`.",
        ),
        *PLAN_KEYS,
    ),
)
