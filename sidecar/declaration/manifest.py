"""The manifest ShopiMind reads about the integration (PROTOCOL §3), derived from the declaration.

Only what ShopiMind needs to show and call the integration: its identity, the
configuration form and widgets in ShopiMind's own key names, and the relative paths of
the webhooks the sidecar serves. Never a secret, a status, or anything about sync,
inbound or provisioning — those are the sidecar's business. Optional keys are left out
when they are not set, rather than sent as null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sidecar.declaration.model import (
    ConfigField,
    ConfigGroup,
    ConfigSchema,
    ConfigStep,
    Declaration,
    JSONValue,
    Localized,
    SelectOption,
    Widget,
    WidgetConfigField,
)

__all__ = ["MANIFEST_LIFECYCLE_EVENTS", "MANIFEST_VERSION", "WEBHOOK_PATHS", "build_manifest"]

MANIFEST_VERSION: Final = 1
WEBHOOK_PATHS: Final[Mapping[str, str]] = {
    "lifecycle": "/webhook/receive",
    "test_connection": "/webhook/test-connection",
    "remote_data": "/webhook/remote-data/{resource}",
}
"""The routes the sidecar serves ShopiMind on, relative to its public base URL."""
MANIFEST_LIFECYCLE_EVENTS: Final = (
    "install",
    "activate",
    "deactivate",
    "uninstall",
    "config_updated",
)


def _set(**values: JSONValue) -> dict[str, JSONValue]:
    """The keys whose value is set (None means unset: TOML has no null)."""
    return {key: value for key, value in values.items() if value is not None}


def _localized(value: Localized | None) -> JSONValue:
    if value is None or isinstance(value, str):
        return value
    translations: dict[str, JSONValue] = dict(value)
    return translations


def _options(options: tuple[SelectOption, ...]) -> JSONValue:
    if not options:
        return None
    return [{"value": o.value, "label": _localized(o.label)} for o in options]


def _field(field: ConfigField) -> JSONValue:
    remote = field.remote
    return _set(
        key=field.key,
        type=field.type,
        label=_localized(field.label),
        help=_localized(field.help),
        required=field.required,
        default=field.default,
        owner=field.owner,
        sensitive=field.sensitive,
        supports_variables=field.supports_variables,
        options=_options(field.options),
        remote=None
        if remote is None
        else _set(
            resource=remote.resource,
            label_field=remote.label_field,
            value_field=remote.value_field,
            description_field=remote.description_field,
        ),
    )


def _part(part: ConfigStep | ConfigGroup) -> JSONValue:
    completion = part.on_complete if isinstance(part, ConfigStep) else None
    return _set(
        key=part.key,
        label=_localized(part.label),
        description=_localized(part.description),
        fields=[_field(f) for f in part.fields],
        on_complete=None if completion is None else {"action": completion.action},
    )


def _config_schema(schema: ConfigSchema) -> JSONValue:
    if schema.steps:
        return {"steps": [_part(step) for step in schema.steps]}
    if schema.groups:
        return {"groups": [_part(group) for group in schema.groups]}
    return {"fields": [_field(f) for f in schema.fields]}


def _widget_field(field: WidgetConfigField) -> JSONValue:
    visible = field.visible_when
    return _set(
        key=field.key,
        type=field.type,
        label=_localized(field.label),
        default=field.default,
        options=_options(field.options),
        supports_variables=field.supports_variables,
        translatable=field.translatable,
        preview_value=field.preview_value,
        strip_hash=field.strip_hash,
        visible_when=None if visible is None else {"field": visible.field, "in": [*visible.values]},
        refresh_fields=[*field.refresh_fields] or None,
    )


def _widget(widget: Widget) -> JSONValue:
    schema = widget.config_schema
    return _set(
        key=widget.key,
        name=_localized(widget.name),
        description=_localized(widget.description),
        icon_url=widget.icon_url,
        preview_image_url=widget.preview_image_url,
        targets=[*widget.targets],
        render_type=widget.render_type,
        render_mode=widget.render_mode,
        image_url_template=widget.image_url_template,
        html_template=widget.html_template,
        css_template=widget.css_template,
        renderer_key=widget.renderer_key,
        default_width=widget.default_width,
        config_schema={
            "fields": [_widget_field(f) for f in schema.fields],
            "groups": [dict(group) for group in schema.groups],
            "style_groups": [dict(group) for group in schema.style_groups],
        },
    )


def build_manifest(declaration: Declaration) -> dict[str, JSONValue]:
    """The manifest v1 of the integration, ready to be serialized as JSON."""
    meta = declaration.meta
    return {
        "manifest_version": MANIFEST_VERSION,
        "slug": declaration.slug,
        "name": meta.name,
        "version": meta.version,
        **_set(
            categories=[*meta.categories] or None,
            icon_url=meta.icon_url,
            short_description=_localized(meta.short_description),
            description=_localized(meta.description),
            documentation_url=meta.documentation_url,
            requires_external_auth=meta.requires_external_auth,
        ),
        "config_schema": _config_schema(declaration.config_schema),
        "widgets": [_widget(widget) for widget in declaration.widgets],
        "webhooks": dict(WEBHOOK_PATHS),
        "lifecycle_events": [*MANIFEST_LIFECYCLE_EVENTS],
        "remote_resources": [*declaration.config_schema.remote_resources()],
    }
