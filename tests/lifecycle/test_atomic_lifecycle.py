"""A lifecycle webhook applies all of its effect or none of it (issue 10, item 4).

A webhook whose handling fails (the app refuses, the store fails, the handler is
cancelled) leaves no state change and no claim behind, so ShopiMind's resend does the
whole thing, once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from sidecar.state_keys import INBOUND_SECRET, PROVISIONING_IDS
from sidecar.testing.vendor_app import Slow
from tests.harness import EXAMPLE, Stack, lifecycle, sidecar_stack, signed_headers


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with sidecar_stack(tmp_path) as running:
        yield running


def _state_keys(stack: Stack, installation_id: str = "inst_1") -> list[object]:
    rows = stack.query(
        "SELECT key FROM installation_state WHERE installation_id = ? ORDER BY key",
        installation_id,
    )
    return [row[0] for row in rows]


def _nothing_of(stack: Stack) -> None:
    assert stack.query("SELECT COUNT(*) FROM installations") == [(0,)]
    assert stack.query("SELECT COUNT(*) FROM installation_state") == [(0,)]
    assert stack.query("SELECT COUNT(*) FROM webhook_claims") == [(0,)]  # released


async def test_activation_refused_by_the_app_applies_nothing_and_the_resend_everything(
    stack: Stack,
) -> None:
    stack.vendor.lifecycle_answer = {"ok": False, "error": "account suspended"}
    refused = await stack.webhook(lifecycle("activated"))
    assert refused.json() == {"success": False, "error": "internal_error"}
    _nothing_of(stack)  # no token, no configs, no ids, no secret, no installation

    stack.vendor.lifecycle_answer = {"ok": True, "external_account": {"id": "acc-1"}}
    assert (await stack.replay()).json() == {"success": True}
    assert stack.status() == "active"
    assert stack.query("SELECT external_account_ref FROM installations") == [("acc-1",)]
    assert {"access_token", "config", INBOUND_SECRET, PROVISIONING_IDS} <= set(_state_keys(stack))
    hooks = len(stack.vendor.lifecycle_calls)
    assert (await stack.replay()).json() == {"success": True}  # applied once: a no-op now
    assert len(stack.vendor.lifecycle_calls) == hooks


async def test_the_activation_hook_sees_the_fresh_provisioning_ids(stack: Stack) -> None:
    await stack.activate()
    call = stack.vendor.lifecycle_calls[-1]
    assert call.event == "activated"
    stored = stack.query("SELECT value FROM installation_state WHERE key = ?", PROVISIONING_IDS)[0][
        0
    ]
    assert call.provisioning_ids == json.loads(str(stored))
    assert isinstance(call.provisioning_ids, dict)
    assert call.provisioning_ids["sourceIds"]  # the example declares sources
    assert all(c.provisioning_ids is None for c in stack.vendor.lifecycle_calls[:-1])


@pytest.mark.parametrize("event", ["installed", "activated"])
async def test_a_store_failing_mid_webhook_applies_nothing_and_the_resend_everything(
    stack: Stack, event: str
) -> None:
    # The last write of the event fails: the secret sealed last (installed) or the status
    # turned active (activated); every earlier write of the same event is rolled back.
    trigger = (
        "CREATE TRIGGER fail_now BEFORE INSERT ON installation_state "
        "WHEN NEW.key = 'config.secret.api_key' BEGIN SELECT RAISE(ABORT, 'disk I/O'); END"
        if event == "installed"
        else "CREATE TRIGGER fail_now BEFORE UPDATE OF status ON installations "
        "WHEN NEW.status = 'active' BEGIN SELECT RAISE(ABORT, 'disk I/O'); END"
    )
    with stack.writable() as connection:
        connection.execute(trigger)
    failed = await stack.webhook(lifecycle(event))
    assert failed.json() == {"success": False, "error": "internal_error"}
    _nothing_of(stack)
    assert [c.event for c in stack.vendor.lifecycle_calls if c.event == "installed"] == []

    with stack.writable() as connection:
        connection.execute("DROP TRIGGER fail_now")
    assert (await stack.replay()).json() == {"success": True}
    assert stack.status() == ("inactive" if event == "installed" else "active")
    assert "config.secret.api_key" in _state_keys(stack)
    assert stack.query("SELECT COUNT(*) FROM webhook_claims") == [(1,)]


async def test_the_inbound_secret_exists_without_the_activated_hook(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    declaration = tmp_path / "integration.toml"
    declaration.write_text(
        text.replace(
            'forward = ["installed", "activated", "deactivated", "uninstalled", "config_updated"]',
            'forward = ["installed"]',
        ),
        encoding="utf-8",
    )
    async with sidecar_stack(tmp_path, declaration=declaration) as stack:
        for event in ("installed", "activated"):
            assert (await stack.webhook(lifecycle(event))).json() == {"success": True}
        assert [c.event for c in stack.vendor.lifecycle_calls] == ["installed"]
        assert INBOUND_SECRET in _state_keys(stack)


async def test_a_webhook_claim_is_released_when_its_handling_is_cancelled(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    body = json.dumps(lifecycle("activated")).encode()
    headers = signed_headers(body)
    async with sidecar_stack(tmp_path) as stack:
        stack.vendor.inject(Slow(seconds=3600), times=10, path="/test-connection")

        async def send() -> None:
            # The sidecar stops while it waits for the app: no answer comes.
            with pytest.raises(httpx.HTTPError):
                await stack.post("/webhook/receive", body, headers)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            # The fake app records calls in a list, with no event to wait on.
            while not any(c.path == "/test-connection" for c in stack.vendor.calls):  # noqa: ASYNC110
                await trio.sleep(0.5)
            assert stack.query("SELECT COUNT(*) FROM webhook_claims") == [(1,)]
            stack.running.stop()  # the drain deadline (1 s) cancels the handler
        database = stack.database
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT COUNT(*) FROM webhook_claims").fetchone() == (0,)
        assert connection.execute("SELECT COUNT(*) FROM installations").fetchone() == (0,)

    async with sidecar_stack(tmp_path) as stack:  # ShopiMind's resend, after the restart
        resent = await stack.post("/webhook/receive", body, headers)
        assert resent.json() == {"success": True}
        assert stack.status() == "active"
