"""The whole declaration file: `slug`, `[meta]`, every section, `[hooks]`.

The order of the root keys is the order they are read in: `[config_schema]` and
`[provisioning]` come before `[[sync]]` and `[inbound]`, whose rules look them up.
"""

from __future__ import annotations

from typing import Final

from sidecar.declaration._common import IDENTIFIER, LOCALIZED, NONBLANK, URL
from sidecar.declaration._compound import ArrayOf
from sidecar.declaration._config_schema import CONFIG_SCHEMA
from sidecar.declaration._nodes import Boolean, Choice, Text
from sidecar.declaration._provisioning import PROVISIONING
from sidecar.declaration._record import Key, Record
from sidecar.declaration._sync import INBOUND, SYNC
from sidecar.declaration._widgets import WIDGETS
from sidecar.declaration.model import LIFECYCLE_EVENTS, Declaration, Hooks, LifecycleEvent, Meta

__all__ = ["DECLARATION"]

META: Final = Record[Meta](
    name="Meta",
    description="What ShopiMind shows about the integration.",
    build=Meta,
    keys=(
        Key(name="name", node=NONBLANK, required=True, description="The integration's name."),
        Key(
            name="version",
            node=Text(pattern=r"[0-9]+\.[0-9]+\.[0-9]+", hint="x.y.z with digits, e.g. '1.4.0'"),
            required=True,
            description="Its version, x.y.z.",
        ),
        Key(
            name="categories",
            node=ArrayOf(item=NONBLANK, unique_by=lambda category: category),
            description="ShopiMind categories it belongs to.",
        ),
        Key(name="icon_url", node=URL, description="Its icon."),
        Key(name="short_description", node=LOCALIZED, description="One line about it."),
        Key(name="description", node=LOCALIZED, description="What it does."),
        Key(name="documentation_url", node=URL, description="Where its documentation is."),
        Key(
            name="requires_external_auth",
            node=Boolean(),
            description="The merchant must sign in to your product to use it.",
        ),
    ),
)


def _hooks(*, forward: tuple[LifecycleEvent, ...] | None = None) -> Hooks:
    return Hooks() if forward is None else Hooks(forward=frozenset(forward))


HOOKS: Final = Record[Hooks](
    name="Hooks",
    description="Lifecycle events forwarded to your app (POST /lifecycle/<event>).",
    build=_hooks,
    keys=(
        Key(
            name="forward",
            node=ArrayOf(item=Choice(values=LIFECYCLE_EVENTS), unique_by=lambda event: event),
            description="Which of " + ", ".join(LIFECYCLE_EVENTS) + " (all when absent).",
        ),
    ),
)

DECLARATION: Final = Record[Declaration](
    name="Declaration",
    description="integration.toml: what a vendor declares about its ShopiMind integration.",
    build=Declaration,
    keys=(
        Key(
            name="slug",
            node=IDENTIFIER,
            required=True,
            description="The integration's identifier on ShopiMind, e.g. 'acme-pos'.",
        ),
        Key(name="meta", node=META, required=True, description="What ShopiMind shows about it."),
        Key(
            name="config_schema",
            node=CONFIG_SCHEMA,
            description="The merchant's configuration form.",
        ),
        Key(name="widgets", node=WIDGETS, description="Widgets the merchant can place."),
        Key(
            name="provisioning",
            node=PROVISIONING,
            description="What must exist on ShopiMind for each installation.",
        ),
        Key(name="sync", node=SYNC, description="Data streamed from your app to ShopiMind."),
        Key(
            name="inbound",
            node=INBOUND,
            description="Real-time actions your app sends: [inbound.<action>].",
        ),
        Key(name="hooks", node=HOOKS, description="Lifecycle events forwarded to your app."),
    ),
)
