"""The declaration file (`integration.toml`) as typed, frozen values.

This module only describes shapes. Parsing and validation live in `sidecar.declaration.load`;
the manifest ShopiMind reads is derived in `sidecar.declaration.manifest`. Keys in the TOML
file are the names of these fields (snake_case), and the config schema and widgets use
ShopiMind's own key names (PROTOCOL §2) so they pass through to the manifest unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeAlias

from sidecar.shopimind.resources import CUSTOM_DATA_PREFIX

__all__ = [
    "LIFECYCLE_EVENTS",
    "ConfigField",
    "ConfigGroup",
    "ConfigSchema",
    "ConfigStep",
    "CursorScope",
    "CustomDataSpec",
    "CustomFieldSpec",
    "DataSourceSpec",
    "Declaration",
    "EventSpec",
    "Hooks",
    "InboundAction",
    "InboundMode",
    "JSONValue",
    "LifecycleEvent",
    "Localized",
    "MaxRatio",
    "Meta",
    "OrderStatusSpec",
    "Provisioning",
    "ProvisioningPlan",
    "RelationshipSpec",
    "RemoteOptions",
    "SelectOption",
    "SourceListing",
    "StepCompletion",
    "SyncStep",
    "TolerateRejects",
    "Widget",
    "WidgetConfigField",
    "WidgetConfigSchema",
    "WidgetVisibility",
    "custom_data_key",
]

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
Localized: TypeAlias = str | Mapping[str, str]
"""A label: one string, or one string per language such as `{fr = "…", en = "…"}`."""

LifecycleEvent = Literal["installed", "activated", "deactivated", "uninstalled", "config_updated"]
LIFECYCLE_EVENTS: Final[tuple[LifecycleEvent, ...]] = (
    "installed",
    "activated",
    "deactivated",
    "uninstalled",
    "config_updated",
)


# --- meta -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta:
    """What ShopiMind shows about the integration."""

    name: str
    version: str
    """`x.y.z`."""
    categories: tuple[str, ...] = ()
    icon_url: str | None = None
    short_description: Localized | None = None
    description: Localized | None = None
    documentation_url: str | None = None
    requires_external_auth: bool | None = None


# --- config schema (PROTOCOL §2) ------------------------------------------------------

FieldType = Literal[
    "text",
    "password",
    "email",
    "url",
    "number",
    "checkbox",
    "textarea",
    "datetime",
    "select",
    "multiselect",
]
FieldOwner = Literal["merchant", "integrator"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SelectOption:
    """One static choice of a select."""

    value: str
    label: Localized


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteOptions:
    """Choices of a select fetched at configuration time (`/webhook/remote-data/{resource}`)."""

    resource: str
    label_field: str
    value_field: str
    description_field: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigField:
    """One field of the merchant's configuration form."""

    key: str
    type: FieldType
    label: Localized
    help: Localized | None = None
    required: bool = False
    default: JSONValue = None
    owner: FieldOwner = "merchant"
    sensitive: bool = False
    """Stored encrypted on its own, masked in every log."""
    supports_variables: bool = False
    options: tuple[SelectOption, ...] = ()
    """Static choices (select, multiselect); exclusive with `remote`."""
    remote: RemoteOptions | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCompletion:
    """What ShopiMind does when a wizard step is completed."""

    action: Literal["test_connection"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigStep:
    """One page of a wizard."""

    key: str
    label: Localized
    description: Localized | None = None
    fields: tuple[ConfigField, ...] = ()
    on_complete: StepCompletion | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigGroup:
    """A titled group of fields."""

    key: str
    label: Localized
    description: Localized | None = None
    fields: tuple[ConfigField, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigSchema:
    """The configuration form: `steps` (a wizard), `fields` (flat) or `groups`, one kind only."""

    steps: tuple[ConfigStep, ...] = ()
    fields: tuple[ConfigField, ...] = ()
    groups: tuple[ConfigGroup, ...] = ()

    def all_fields(self) -> tuple[ConfigField, ...]:
        """Every field, whatever the layout, in declaration order."""
        nested = [f for step in self.steps for f in step.fields]
        grouped = [f for group in self.groups for f in group.fields]
        return (*self.fields, *nested, *grouped)

    def field(self, key: str) -> ConfigField | None:
        """The field named `key`, or None."""
        return next((f for f in self.all_fields() if f.key == key), None)

    def sensitive_keys(self) -> frozenset[str]:
        """Keys of the fields whose values are secrets."""
        return frozenset(f.key for f in self.all_fields() if f.sensitive)

    def remote_resources(self) -> tuple[str, ...]:
        """Remote-data resources the form uses, each once, in order."""
        seen: dict[str, None] = {}
        for f in self.all_fields():
            if f.remote is not None:
                seen.setdefault(f.remote.resource, None)
        return tuple(seen)


# --- widgets (PROTOCOL §2) ------------------------------------------------------------

WidgetTarget = Literal["email_template", "popup", "smart_content", "stats_dashboard"]
WidgetFieldType = Literal["text", "number", "color", "select", "checkbox", "datetime"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WidgetVisibility:
    """Show a widget field only when another field's value is one of `values` (`in`)."""

    field: str
    values: tuple[JSONValue, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class WidgetConfigField:
    """One setting of a widget."""

    key: str
    type: WidgetFieldType
    label: Localized | None = None
    default: JSONValue = None
    options: tuple[SelectOption, ...] = ()
    supports_variables: bool = False
    translatable: bool = False
    preview_value: JSONValue = None
    strip_hash: bool = False
    visible_when: WidgetVisibility | None = None
    refresh_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class WidgetConfigSchema:
    """A widget's settings; groups and style groups pass through to the manifest as given."""

    fields: tuple[WidgetConfigField, ...] = ()
    groups: tuple[Mapping[str, JSONValue], ...] = ()
    style_groups: tuple[Mapping[str, JSONValue], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Widget:
    """A block the merchant can place in emails, popups, smart content or dashboards."""

    key: str
    name: Localized
    description: Localized | None = None
    icon_url: str | None = None
    preview_image_url: str | None = None
    targets: tuple[WidgetTarget, ...] = ()
    render_type: Literal["image", "html"] = "html"
    render_mode: Literal["static", "dynamic"] | None = None
    """html widgets only."""
    image_url_template: str | None = None
    html_template: str | None = None
    css_template: str | None = None
    renderer_key: str | None = None
    default_width: int | None = None
    config_schema: WidgetConfigSchema = field(default_factory=WidgetConfigSchema)


# --- provisioning (PROTOCOL §4) --------------------------------------------------------

CustomFieldType = Literal[
    "bool",
    "text",
    "longtext",
    "number",
    "decimal",
    "list",
    "date",
    "datetime",
    "json",
    "geolocation",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSourceSpec:
    """A data source to find or create; `stable_key` names the config entry that identifies it."""

    key: str
    label: str
    type: str
    parent: str | None = None
    """The `key` of a source earlier in the same plan."""
    config: Mapping[str, JSONValue] = field(default_factory=dict)
    """Sent to ShopiMind as a JSON string."""
    stable_key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomFieldSpec:
    """A field of a custom data definition."""

    name: str
    type: CustomFieldType
    label: str | None = None
    """Defaults to `name`."""
    required: bool = False
    description: str | None = None
    default: JSONValue = None
    options: tuple[JSONValue, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RelationshipSpec:
    """A link from a field of a definition to a system schema or another definition."""

    source_field: str
    target_schema_type: Literal["system", "custom"]
    target_schema: str
    """A system schema name, or the `name` of a custom definition (a sibling in the plan)."""
    target_field: str | None = None


def custom_data_key(name: str) -> str:
    """How custom data definitions are told apart: by trimmed, case-insensitive name."""
    return name.strip().casefold()


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomDataSpec:
    """A custom data definition to find (and extend) or create, then activate."""

    name: str
    description: str | None = None
    unique_keys: tuple[str, ...] = ()
    fields: tuple[CustomFieldSpec, ...] = ()
    relationships: tuple[RelationshipSpec, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSpec:
    """A custom event type; creating one that exists (409) is fine."""

    code_name: str
    name: Localized
    properties: tuple[Mapping[str, JSONValue], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderStatusSpec:
    """An order status, saved in one bulk call with the others."""

    status_id: str | int
    lang: str
    name: str
    is_deleted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisioningPlan:
    """What to make sure exists on ShopiMind for an installation."""

    data_sources: tuple[DataSourceSpec, ...] = ()
    custom_data: tuple[CustomDataSpec, ...] = ()
    events: tuple[EventSpec, ...] = ()
    order_statuses: tuple[OrderStatusSpec, ...] = ()

    def merged_with(self, extra: ProvisioningPlan) -> ProvisioningPlan:
        """This plan followed by `extra` (the app's dynamic part)."""
        return ProvisioningPlan(
            data_sources=(*self.data_sources, *extra.data_sources),
            custom_data=(*self.custom_data, *extra.custom_data),
            events=(*self.events, *extra.events),
            order_statuses=(*self.order_statuses, *extra.order_statuses),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Provisioning:
    """The static plan, and whether to ask the app for more (`POST /provisioning`)."""

    plan: ProvisioningPlan = field(default_factory=ProvisioningPlan)
    dynamic: bool = False


# --- sync (PROTOCOL §8) ---------------------------------------------------------------

CursorScope = Literal["global", "per-source"]
SourceListing = Literal["app", "data_sources"]
"""How a per-source step lists its sources: ask the app (`/sources/{entity}`), or one
source per provisioned data source."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxRatio:
    """Advance the cursor while rejected / (accepted + rejected) <= max_ratio."""

    max_ratio: float


TolerateRejects: TypeAlias = bool | MaxRatio


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncStep:
    """One entity streamed from the app (`/sync/{entity}`) to a ShopiMind target."""

    entity: str
    target: str
    """A bulk resource (`customers`, `orders`…) or `custom_data:<definition name>`."""
    cursor_scope: CursorScope = "global"
    sources: SourceListing | None = None
    """Required for per-source steps."""
    data_source: str | None = None
    """Tag every item with this provisioned source's `id_data_source`."""
    enabled_when: str | None = None
    """A checkbox field of the config: the step runs only when it is checked."""
    batch_size: int | None = None
    """Items per push; defaults to the target's chunk size."""
    tolerate_rejects: TolerateRejects = False
    page_limit: int = 500
    """Items asked of the app per page."""
    max_pages: int = 100_000
    """A source that pages longer than this is an error, not an endless loop."""

    @property
    def custom_data_name(self) -> str | None:
        """The definition name when the target is `custom_data:<name>`."""
        if self.target.startswith(CUSTOM_DATA_PREFIX):
            return self.target[len(CUSTOM_DATA_PREFIX) :]
        return None


# --- inbound (PROTOCOL §5) ------------------------------------------------------------

InboundMode = Literal["queued", "direct"]


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundAction:
    """What `POST /inbound/<name>` does on ShopiMind."""

    name: str
    target: str
    """`trigger_event:<code_name>`, a bulk resource, `custom_data:<name>`, or `contacts`."""
    mode: InboundMode = "queued"


# --- hooks and the whole file ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Hooks:
    """Which lifecycle events are forwarded to the app (`POST /lifecycle/<event>`)."""

    forward: frozenset[LifecycleEvent] = frozenset(LIFECYCLE_EVENTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Declaration:
    """Everything the vendor declares about its integration."""

    slug: str
    meta: Meta
    config_schema: ConfigSchema = field(default_factory=ConfigSchema)
    widgets: tuple[Widget, ...] = ()
    provisioning: Provisioning = field(default_factory=Provisioning)
    sync: tuple[SyncStep, ...] = ()
    inbound: Mapping[str, InboundAction] = field(default_factory=dict)
    hooks: Hooks = field(default_factory=Hooks)
    source: Path | None = None
    """The file it was read from."""
