"""The declaration file (`integration.toml`): typed model, validation, manifest, JSON Schema.

    load_declaration(path)            the file → a frozen `Declaration`, or DeclarationError
    parse_provisioning_plan(data, …)  the app's dynamic plan (JSON) → a `ProvisioningPlan`
    build_manifest(declaration)       the manifest ShopiMind reads (PROTOCOL §3)
    declaration_json_schema()         the file's JSON Schema, for editors

The model classes live in `sidecar.declaration.model`; the most used are re-exported.
"""

from sidecar.declaration.load import load_declaration, parse_declaration, parse_provisioning_plan
from sidecar.declaration.manifest import build_manifest
from sidecar.declaration.model import (
    LIFECYCLE_EVENTS,
    ConfigField,
    ConfigSchema,
    CustomDataSpec,
    DataSourceSpec,
    Declaration,
    Hooks,
    InboundAction,
    LifecycleEvent,
    MaxRatio,
    Meta,
    Provisioning,
    ProvisioningPlan,
    SyncStep,
    Widget,
)
from sidecar.declaration.schema import declaration_json_schema

__all__ = [
    "LIFECYCLE_EVENTS",
    "ConfigField",
    "ConfigSchema",
    "CustomDataSpec",
    "DataSourceSpec",
    "Declaration",
    "Hooks",
    "InboundAction",
    "LifecycleEvent",
    "MaxRatio",
    "Meta",
    "Provisioning",
    "ProvisioningPlan",
    "SyncStep",
    "Widget",
    "build_manifest",
    "declaration_json_schema",
    "load_declaration",
    "parse_declaration",
    "parse_provisioning_plan",
]
