"""The merchant's settings app-check sends, and what in them must never be shown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sidecar.declaration import Declaration
from sidecar.declaration.model import ConfigField

__all__ = ["config_fields", "default_settings", "sensitive_keys"]

_PLACEHOLDERS: Final[Mapping[str, object]] = {
    "url": "https://app-check.example",
    "email": "app-check@example.com",
    "number": 0,
    "checkbox": False,
    "datetime": "2026-01-01T00:00:00Z",
}


def config_fields(declaration: Declaration) -> list[ConfigField]:
    """Every field of the configuration form, whatever its layout (steps, groups, flat)."""
    schema = declaration.config_schema
    fields = [*schema.fields]
    for step in schema.steps:
        fields += step.fields
    for group in schema.groups:
        fields += group.fields
    return fields


def default_settings(declaration: Declaration) -> dict[str, object]:
    """Settings a merchant could have saved: each field's default, else a placeholder for a
    required field (a select gets its first option; a remote one, the app's first option)."""
    settings: dict[str, object] = {}
    for config_field in config_fields(declaration):
        if config_field.default is not None:
            settings[config_field.key] = config_field.default
        elif config_field.options:
            settings[config_field.key] = config_field.options[0].value
        elif config_field.required and config_field.remote is None:
            settings[config_field.key] = _PLACEHOLDERS.get(config_field.type, "app-check")
    return settings


def sensitive_keys(declaration: Declaration) -> frozenset[str]:
    """The form's `sensitive` fields: masked in every request a report shows."""
    return frozenset(f.key for f in config_fields(declaration) if f.sensitive)
