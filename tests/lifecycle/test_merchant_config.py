"""Merchant configuration storage (PROTOCOL §2): plain JSON plus one sealed value per secret."""

from __future__ import annotations

import pytest

from sidecar.declaration.model import ConfigField, ConfigSchema
from sidecar.lifecycle.merchant_config import load_settings, save_configs
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore

SCHEMA = ConfigSchema(
    fields=(
        ConfigField(key="api_url", type="url", label="API"),
        ConfigField(key="api_key", type="password", label="Key", sensitive=True),
        ConfigField(key="pin", type="number", label="PIN", sensitive=True),
    )
)


@pytest.fixture
async def installed(store: SqliteStore) -> SqliteStore:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="inactive"))
    return store


async def test_round_trip_with_secrets_sealed(installed: SqliteStore) -> None:
    configs = {"api_url": "https://pos.example", "api_key": "k-123", "pin": 4321, "extra": [1]}
    await save_configs(installed.state, SCHEMA, "i", configs)
    assert await load_settings(installed.state, "i") == configs
    entries = {(e.key, e.encrypted) for e in await installed.state.keys("i")}
    assert entries == {
        ("config", False),
        ("config.secret.api_key", True),
        ("config.secret.pin", True),
    }
    plain = await installed.state.get("i", "config")
    assert plain is not None
    assert "k-123" not in plain
    assert "4321" not in plain


async def test_empty_or_absent_sensitive_value_erases_the_secret(installed: SqliteStore) -> None:
    await save_configs(installed.state, SCHEMA, "i", {"api_key": "k", "pin": 1})
    await save_configs(installed.state, SCHEMA, "i", {"api_key": "", "api_url": "u"})
    assert await load_settings(installed.state, "i") == {"api_url": "u"}
    assert {e.key for e in await installed.state.keys("i")} == {"config"}


async def test_a_field_no_longer_sensitive_drops_its_old_secret(installed: SqliteStore) -> None:
    await save_configs(installed.state, SCHEMA, "i", {"api_key": "k"})
    relaxed = ConfigSchema(fields=(ConfigField(key="api_key", type="text", label="Key"),))
    await save_configs(installed.state, relaxed, "i", {"api_key": "now-plain"})
    assert await load_settings(installed.state, "i") == {"api_key": "now-plain"}
    assert {e.key for e in await installed.state.keys("i")} == {"config"}


async def test_nothing_stored_loads_as_empty(installed: SqliteStore) -> None:
    assert await load_settings(installed.state, "i") == {}
