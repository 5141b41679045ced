"""Activation when a peer fails: the outcomes PROTOCOL §1.3 prescribes, and no secret leaks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio.testing

from sidecar.testing.vendor_app import HttpStatus, JsonBody, RawBody, Reset, Slow
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX, WEBHOOK_SECRET
from tests.harness import ACCESS_TOKEN, SHOP_SECRET_CONFIG, Stack, lifecycle, sidecar_stack

SECRETS = (ACCESS_TOKEN, SHOP_SECRET_CONFIG, APP_SECRET, WEBHOOK_SECRET, CREDENTIALS_KEY_HEX)


# Every test takes `mock_clock` itself (pytest-trio uses a clock only when the test
# function asks for it): retries, backoff and slow peers then take no real time.
@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with sidecar_stack(tmp_path) as running:
        yield running


def assert_nothing_leaked(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    logged = "\n".join(
        f"{r.getMessage()} {getattr(r, 'sidecar_meta', '')!r} {r.exc_text or ''}"
        for r in caplog.records
    )
    for secret in SECRETS:
        assert secret not in logged
        for text in texts:
            assert secret not in text


async def _activate(stack: Stack) -> dict[str, object]:
    await stack.webhook(lifecycle("installed"))
    response = await stack.webhook(lifecycle("activated"))
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize(
    "fault",
    [
        None,  # the app is down
        HttpStatus(status=500),
        Slow(seconds=120),  # longer than the bridge's 30 s timeout, on every retry
        RawBody(body=b"<html>Gateway</html>"),
        JsonBody(value={"ok": "yes"}),
        JsonBody(value=[1, 2]),
        Reset(),
        JsonBody(value={"ok": False, "error": "the API key was revoked"}),
    ],
)
async def test_app_failing_during_activation(
    mock_clock: trio.testing.MockClock,
    stack: Stack,
    caplog: pytest.LogCaptureFixture,
    fault: object,
) -> None:
    caplog.set_level(logging.DEBUG)
    if fault is None:
        stack.vendor.down = True
    else:
        stack.vendor.inject(fault, times=10, path="/test-connection")  # type: ignore[arg-type]
    body = await _activate(stack)
    assert body == {"success": False, "error": "connection_failed"}
    assert stack.status() == "inactive"
    assert not any(r.path.startswith("custom-data") for r in stack.shopimind.requests)
    assert_nothing_leaked(caplog, str(body))


async def test_provisioning_failing_entirely(
    mock_clock: trio.testing.MockClock, stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stack.shopimind.fail_next(1000, status=500)
    body = await _activate(stack)
    assert body["success"] is False
    assert str(body["error"]).startswith("provisioning_failed: ")
    assert "500" in str(body["error"])
    assert stack.status() == "inactive"
    assert [c.event for c in stack.vendor.lifecycle_calls] == ["installed"]  # no on_activate
    assert_nothing_leaked(caplog, str(body))


async def test_provisioning_failing_partly_still_activates(
    mock_clock: trio.testing.MockClock, stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stack.shopimind.fail_next(1000, status=422, path="events")
    body = await _activate(stack)
    assert body == {"success": True}
    assert stack.status() == "active"
    warnings = [r for r in caplog.records if r.getMessage() == "provisioning finished with errors"]
    assert warnings
    assert warnings[0].levelno == logging.WARNING


async def test_activation_hook_refused_keeps_the_installation_inactive(
    mock_clock: trio.testing.MockClock, stack: Stack
) -> None:
    stack.vendor.lifecycle_answer = {"ok": False, "error": "account suspended"}
    body = await _activate(stack)
    assert body == {"success": False, "error": "internal_error"}
    assert stack.status() == "inactive"
    stack.vendor.lifecycle_answer = {
        "ok": True,
        "external_account": {"id": "acc-9", "name": "Acme"},
    }
    assert (await stack.replay()).json() == {"success": True}  # the claim was released
    assert stack.status() == "active"
    assert stack.query("SELECT external_account_ref, external_account_name FROM installations") == [
        ("acc-9", "Acme")
    ]


async def test_deactivation_hook_failure_is_logged_not_surfaced(
    mock_clock: trio.testing.MockClock, stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await _activate(stack)) == {"success": True}
    stack.vendor.down = True
    response = await stack.webhook(lifecycle("deactivated"))
    assert response.json() == {"success": True}
    assert stack.status() == "inactive"
    assert any(r.getMessage() == "lifecycle hook failed; ignored" for r in caplog.records)


async def test_config_update_always_succeeds(
    mock_clock: trio.testing.MockClock, stack: Stack
) -> None:
    assert (await _activate(stack)) == {"success": True}
    stack.shopimind.fail_next(1000, status=500)
    stack.vendor.down = True
    response = await stack.webhook(lifecycle("config_updated", configs={"api_key": "new"}))
    assert response.json() == {"success": True}


async def test_dynamic_provisioning_answer_is_validated(
    mock_clock: trio.testing.MockClock, stack: Stack
) -> None:
    stack.vendor.provisioning_answer = {"data_sources": [{"key": "x"}]}  # label and type missing
    body = await _activate(stack)
    assert body == {"success": True}  # the static plan still provisioned: a partial error
    stack.vendor.provisioning_answer = {
        "data_sources": [{"key": "store-9", "label": "Store 9", "type": "pos", "parent": "acme"}]
    }
    await stack.webhook(lifecycle("config_updated"))

    def store_9_created() -> bool:
        created = [r.json for r in stack.shopimind.requests_to("data-sources", method="POST")]
        return any(
            isinstance(body, dict) and "Store 9" in (body.get("name"), body.get("label"))
            for body in created
        )

    # Provisioned at once, or right after the activation's backfill when it still runs
    # (one installation is never provisioned and synced at the same time).
    with trio.fail_after(600):
        while not store_9_created():  # noqa: ASYNC110 - virtual time
            await trio.sleep(1)
