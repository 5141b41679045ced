"""Integrator-owned config fields (PROTOCOL §2, §6): the app states their values in its
lifecycle answer; the sidecar checks them against the declaration, reads ShopiMind's
current values (GET integration-config) and PUTs the merged map when something changed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.harness import Stack, lifecycle, sidecar_stack


def _calls(stack: Stack, method: str) -> int:
    return len(stack.shopimind.requests_to("integration-config", method=method))


async def test_the_apps_values_reach_shopimind_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with sidecar_stack(tmp_path, env={"SYNC_INTERVAL_MINUTES": "0"}) as stack:
        stack.vendor.lifecycle_answer = {
            "ok": True,
            "integrator_config": {
                "acme_account_id": "A-17",
                "api_key": "not the app's to set",  # owner: merchant
                "ghost": 1,  # not declared
            },
        }
        with caplog.at_level(logging.WARNING, logger="sidecar"):
            await stack.activate()
        assert stack.shopimind.integration_config == {"acme_account_id": "A-17"}
        assert (_calls(stack, "GET"), _calls(stack, "PUT")) >= (1, 1)
        refused = [r.getMessage() for r in caplog.records]
        assert refused.count("integrator config value refused") == 4  # installed, activated
        puts = _calls(stack, "PUT")

        # The same values again (config_updated): read, found unchanged, not written.
        answer = await stack.webhook(lifecycle("config_updated"))
        assert answer.json() == {"success": True}
        assert _calls(stack, "PUT") == puts

        stack.vendor.lifecycle_answer = {"ok": True, "integrator_config": {"acme_account_id": 5}}
        answer = await stack.webhook(lifecycle("config_updated"))
        assert answer.json() == {"success": True}
        assert stack.shopimind.integration_config == {"acme_account_id": "A-17"}  # wrong type


async def test_a_malformed_integrator_config_is_the_apps_error(tmp_path: Path) -> None:
    async with sidecar_stack(tmp_path, env={"SYNC_INTERVAL_MINUTES": "0"}) as stack:
        stack.vendor.lifecycle_answer = {"ok": True, "integrator_config": ["A-17"]}
        for event in ("installed", "activated"):
            answer = await stack.webhook(lifecycle(event))
        assert answer.json() == {"success": False, "error": "internal_error"}
        assert _calls(stack, "PUT") == 0
