"""The five lifecycle events end to end, through HTTP, with signed webhooks (PROTOCOL §1.3)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.state_keys import ACCESS_TOKEN as ACCESS_TOKEN_KEY
from sidecar.state_keys import INBOUND_SECRET, PROVISIONING_IDS, PROVISIONING_REQUEST, SYNC_REQUEST
from tests.harness import (
    ACCESS_TOKEN,
    SHOP_SECRET_CONFIG,
    Stack,
    configs,
    lifecycle,
    raw_database_bytes,
    sidecar_stack,
)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with sidecar_stack(tmp_path) as running:
        yield running


def state_keys(stack: Stack, installation_id: str = "inst_1") -> dict[str, int]:
    rows = stack.query(
        "SELECT key, encrypted FROM installation_state WHERE installation_id = ?", installation_id
    )
    return {str(key): int(str(encrypted)) for key, encrypted in rows}


async def test_full_lifecycle(stack: Stack) -> None:
    installed = await stack.webhook(
        lifecycle("installed", external_account_id=77, external_account_name="Bistro SARL")
    )
    assert installed.status_code == 200
    assert installed.json() == {"success": True}
    assert stack.status() == "inactive"
    assert state_keys(stack) == {"access_token": 1, "config": 0, "config.secret.api_key": 1}
    assert stack.query("SELECT external_account_ref, shop_domain FROM installations") == [
        ("77", "bistro.example")
    ]

    activated = await stack.webhook(
        lifecycle("activated", activated_at="2026-11-26T10:00:00+01:00")
    )
    assert activated.json() == {"success": True}
    assert stack.status() == "active"
    assert stack.query("SELECT activated_at FROM installations") == [("2026-11-26T09:00:00.000Z",)]
    # Provisioning reached ShopiMind…
    paths = {(r.method, r.path) for r in stack.shopimind.requests}
    assert ("POST", "data-sources") in paths
    assert ("POST", "custom-data-definitions") in paths
    assert ("POST", "events") in paths
    assert ("POST", "orders-statuses") in paths
    assert all(r.headers.get("spm-api-key") == ACCESS_TOKEN for r in stack.shopimind.requests)
    ids = json.loads(
        str(
            stack.query("SELECT value FROM installation_state WHERE key = ?", PROVISIONING_IDS)[0][
                0
            ]
        )
    )
    assert set(ids["sourceIds"]) == {"acme", "acme-web"}
    assert set(ids["defIds"]) == {"loyalty_programs", "loyalty_cards"}
    # …the app was told, with the installation's inbound secret and decrypted settings…
    calls = {call.event: call for call in stack.vendor.lifecycle_calls}
    assert set(calls) == {"installed", "activated"}
    assert str(calls["activated"].inbound_secret).startswith("insec_")
    assert len(str(calls["activated"].inbound_secret)) == len("insec_") + 48
    assert calls["installed"].inbound_secret is None
    assert isinstance(calls["activated"].settings, dict)
    assert calls["activated"].settings["api_key"] == SHOP_SECRET_CONFIG
    assert stack.vendor.signature_failures == []
    # …and a full backfill is due.
    request = stack.query("SELECT value FROM installation_state WHERE key = ?", SYNC_REQUEST)
    assert json.loads(str(request[0][0]))["full"] is True

    updated = await stack.webhook(lifecycle("config_updated", configs=configs(api_key="")))
    assert updated.json() == {"success": True}
    assert "config.secret.api_key" not in state_keys(stack)  # an empty secret erases it
    assert stack.status() == "active"

    deactivated = await stack.webhook(lifecycle("deactivated"))
    assert deactivated.json() == {"success": True}
    assert stack.status() == "inactive"
    again = await stack.webhook(lifecycle("deactivated", deactivated_at="2030-01-01T00:00:00Z"))
    assert again.json() == {"success": True}  # idempotent: no-op, hook not replayed
    assert [c.event for c in stack.vendor.lifecycle_calls].count("deactivated") == 1

    uninstalled = await stack.webhook(lifecycle("uninstalled"))
    assert uninstalled.json() == {"success": True}
    assert stack.status() == "uninstalled"
    assert ACCESS_TOKEN_KEY not in state_keys(stack)  # a revoked shop's credentials are dropped
    assert INBOUND_SECRET not in state_keys(stack)
    assert (await stack.webhook(lifecycle("uninstalled"))).json() == {"success": True}
    assert [c.event for c in stack.vendor.lifecycle_calls] == [
        "installed",
        "activated",
        "config_updated",
        "deactivated",
        "uninstalled",
    ]


async def test_replays_are_answered_without_reprocessing(stack: Stack) -> None:
    await stack.webhook(lifecycle("installed"))
    first = await stack.webhook(lifecycle("activated"))
    assert first.json() == {"success": True}
    api_calls = len(stack.shopimind.requests)
    hooks = len(stack.vendor.lifecycle_calls)
    replayed = await stack.replay()
    assert replayed.status_code == 200
    assert replayed.json() == {"success": True}
    assert len(stack.shopimind.requests) == api_calls
    assert len(stack.vendor.lifecycle_calls) == hooks
    assert stack.query("SELECT COUNT(*) FROM webhook_claims") == [(2,)]


async def test_a_failed_webhook_releases_its_claim_so_the_resend_runs(stack: Stack) -> None:
    await stack.webhook(lifecycle("installed"))
    stack.vendor.connection = {"ok": False, "error": "bad key"}
    refused = await stack.webhook(lifecycle("activated"))
    assert refused.json() == {"success": False, "error": "connection_failed"}
    assert stack.status() == "inactive"
    stack.vendor.connection = {"ok": True}
    resent = await stack.replay()
    assert resent.json() == {"success": True}
    assert stack.status() == "active"


async def test_no_plaintext_token_or_secret_config_in_the_database(stack: Stack) -> None:
    await stack.webhook(lifecycle("installed"))
    await stack.webhook(lifecycle("activated"))
    blob = raw_database_bytes(stack.database)
    assert b"inst_1" in blob
    assert ACCESS_TOKEN.encode() not in blob
    assert SHOP_SECRET_CONFIG.encode() not in blob
    inbound = str(stack.vendor.lifecycle_calls[-1].inbound_secret)
    assert inbound.encode() not in blob


async def test_the_webhook_log_masks_secrets_twice(stack: Stack) -> None:
    await stack.webhook(lifecycle("installed", configs=configs(store_token="t0k3n")))
    (payload,) = stack.query("SELECT payload_json FROM webhook_log")
    logged = json.loads(str(payload[0]))
    assert logged["access_token"] == "[redacted]"  # by key name
    assert logged["configs"]["api_key"] == "[redacted]"  # declared sensitive
    assert logged["configs"]["store_token"] == "[redacted]"  # key name, at any depth
    assert logged["configs"]["store_id"] == "store-1"


async def test_unsigned_requests_are_logged_then_refused(stack: Stack) -> None:
    response = await stack.webhook(lifecycle("installed"), secret="forged")
    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "unauthorized"}
    assert stack.query("SELECT event, installation_id, signature_ok FROM webhook_log") == [
        ("integration.installed", "inst_1", 0)
    ]
    assert stack.status() is None


async def test_installed_without_installation_id_does_nothing(stack: Stack) -> None:
    response = await stack.webhook(lifecycle("installed", installation_id=None))
    assert response.json() == {"success": True}
    assert stack.query("SELECT COUNT(*) FROM installations") == [(0,)]


async def test_activated_without_installation_id(stack: Stack) -> None:
    response = await stack.webhook(lifecycle("activated", installation_id=None))
    assert response.json() == {"success": False, "error": "missing_installation_id"}


async def test_legacy_numeric_id(stack: Stack) -> None:
    payload = lifecycle("installed", installation_id=None, id_shop_integration=4021, id_shop=9)
    assert (await stack.webhook(payload)).json() == {"success": True}
    assert stack.status("4021") == "inactive"
    assert stack.query("SELECT installation_id FROM webhook_log") == [("4021",)]  # logged so


async def test_unknown_event(stack: Stack) -> None:
    response = await stack.webhook({"event": "integration.exploded", "installation_id": "inst_1"})
    assert response.status_code == 200
    assert response.json() == {"success": False, "error": "unknown_event"}


async def test_config_update_during_a_sync_defers_provisioning(stack: Stack) -> None:
    await stack.webhook(lifecycle("installed"))
    assert (await stack.webhook(lifecycle("activated"))).json() == {"success": True}
    provisioned = len(stack.shopimind.requests)
    # A sync (another process) holds the installation: provisioning must not run now.
    with sqlite3.connect(stack.database) as connection:
        connection.execute(
            # Replaces the row the provisioning at activation released.
            "INSERT OR REPLACE INTO leases (name, owner, acquired_at, expires_at) "
            "VALUES ('installation:inst_1', 'other-host:1:x', "
            "'2026-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z')"
        )
    response = await stack.webhook(lifecycle("config_updated", configs=configs(store_id="store-2")))
    assert response.json() == {"success": True}
    assert len(stack.shopimind.requests) == provisioned  # nothing provisioned meanwhile
    assert stack.query(
        "SELECT COUNT(*) FROM installation_state WHERE key = ?", PROVISIONING_REQUEST
    ) == [(1,)]
