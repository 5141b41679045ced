"""The manifest ShopiMind reads (PROTOCOL §3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sidecar.declaration import build_manifest, load_declaration
from tests.declaration.helpers import EXAMPLE, declare

WEBHOOKS = {
    "lifecycle": "/webhook/receive",
    "test_connection": "/webhook/test-connection",
    "remote_data": "/webhook/remote-data/{resource}",
}
LIFECYCLE = ["install", "activate", "deactivate", "uninstall", "config_updated"]


def keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from keys(value)


def test_a_small_declaration() -> None:
    declaration = declare(
        """
        slug = "mini"

        [meta]
        name = "Mini"
        version = "0.2.0"
        short_description = { fr = "Petit", en = "Small" }

        [[config_schema.steps]]
        key = "login"
        label = "Login"
        on_complete = { action = "test_connection" }

        [[config_schema.steps.fields]]
        key = "api_key"
        type = "password"
        label = "Key"
        required = true
        sensitive = true

        [[config_schema.steps.fields]]
        key = "store"
        type = "select"
        label = { fr = "Boutique", en = "Store" }
        remote = { resource = "stores", label_field = "name", value_field = "id" }

        [[widgets]]
        key = "w"
        name = "W"
        targets = ["popup"]

        [[widgets.config_schema.fields]]
        key = "style"
        type = "select"
        options = [{ value = "a", label = "A" }]

        [[widgets.config_schema.fields]]
        key = "color"
        type = "color"
        visible_when = { field = "style", in = ["a"] }

        [provisioning]
        dynamic = true

        [[sync]]
        entity = "customers"
        target = "customers"

        [inbound.x]
        target = "contacts"

        [hooks]
        forward = []
        """,
        head=False,
    )
    common = {"owner": "merchant", "supports_variables": False}
    assert build_manifest(declaration) == {
        "manifest_version": 1,
        "slug": "mini",
        "name": "Mini",
        "version": "0.2.0",
        "short_description": {"fr": "Petit", "en": "Small"},
        "config_schema": {
            "steps": [
                {
                    "key": "login",
                    "label": "Login",
                    "fields": [
                        {
                            "key": "api_key",
                            "type": "password",
                            "label": "Key",
                            "required": True,
                            "sensitive": True,
                            **common,
                        },
                        {
                            "key": "store",
                            "type": "select",
                            "label": {"fr": "Boutique", "en": "Store"},
                            "required": False,
                            "sensitive": False,
                            "remote": {
                                "resource": "stores",
                                "label_field": "name",
                                "value_field": "id",
                            },
                            **common,
                        },
                    ],
                    "on_complete": {"action": "test_connection"},
                }
            ]
        },
        "widgets": [
            {
                "key": "w",
                "name": "W",
                "targets": ["popup"],
                "render_type": "html",
                "config_schema": {
                    "fields": [
                        {
                            "key": "style",
                            "type": "select",
                            "options": [{"value": "a", "label": "A"}],
                            "supports_variables": False,
                            "translatable": False,
                            "strip_hash": False,
                        },
                        {
                            "key": "color",
                            "type": "color",
                            "supports_variables": False,
                            "translatable": False,
                            "strip_hash": False,
                            "visible_when": {"field": "style", "in": ["a"]},
                        },
                    ],
                    "groups": [],
                    "style_groups": [],
                },
            }
        ],
        "webhooks": WEBHOOKS,
        "lifecycle_events": LIFECYCLE,
        "remote_resources": ["stores"],
    }


def test_optional_keys_are_left_out_when_unset() -> None:
    manifest = build_manifest(declare())
    assert manifest == {
        "manifest_version": 1,
        "slug": "demo",
        "name": "Demo",
        "version": "1.0.0",
        "config_schema": {"fields": []},
        "widgets": [],
        "webhooks": WEBHOOKS,
        "lifecycle_events": LIFECYCLE,
        "remote_resources": [],
    }


def test_the_example_tells_shopimind_only_what_it_needs() -> None:
    manifest = build_manifest(load_declaration(EXAMPLE))
    assert json.loads(json.dumps(manifest)) == manifest
    assert set(manifest) == {
        "manifest_version",
        "slug",
        "name",
        "version",
        "categories",
        "icon_url",
        "short_description",
        "description",
        "documentation_url",
        "requires_external_auth",
        "config_schema",
        "widgets",
        "webhooks",
        "lifecycle_events",
        "remote_resources",
    }
    everywhere = set(keys(manifest))
    assert everywhere.isdisjoint({"sync", "inbound", "provisioning", "hooks", "secret", "status"})
    assert "values" not in everywhere
    assert manifest["remote_resources"] == ["stores"]
    groups = manifest["config_schema"]
    assert isinstance(groups, dict)
    assert list(groups) == ["steps"]
