"""`shopimind-sidecar simulate` against the PHP sample app, as a vendor runs it: exit 0, and
ShopiMind received exactly the app's data and its inbound call."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import trio

from sidecar.cli import main
from tests.conftest import APP_SECRET
from tests.harness import EXAMPLE
from tests.sample_apps import PREFIX, SAMPLE_COUNTS, sample_app
from tests.test_sample_apps_serve import free_port


async def _simulate(tmp_path: Path, settings: dict[str, object]) -> tuple[int, str]:
    """Run `simulate` against the PHP app, as a vendor does: its exit code and output."""
    port = free_port()
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(settings))
    async with sample_app(
        "php", secret=APP_SECRET, state_dir=tmp_path, sidecar_url=f"http://127.0.0.1:{port}"
    ) as app_url:
        result = await trio.run_process(
            [
                sys.executable,
                "-m",
                "sidecar",
                "simulate",
                "--port",
                str(port),
                "--settings",
                str(settings_file),
                "--inbound-trigger",
                app_url + "/till/sale",
                "--workspace",
                str(tmp_path / "workspace"),
            ],
            env={
                "PATH": os.environ.get("PATH", ""),
                "APP_BASE_URL": app_url + PREFIX,
                "APP_SECRET": APP_SECRET,
                "INTEGRATION_FILE": str(EXAMPLE),
            },
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return result.returncode, result.stdout.decode() + result.stderr.decode()


async def test_simulate_against_the_php_app_exits_0_with_the_same_counts(tmp_path: Path) -> None:
    returncode, out = await _simulate(tmp_path, {"api_key": "acme-test-key", "sync_loyalty": True})
    assert returncode == 0, out
    received = {
        target: int(count)
        for target, count in re.findall(r"^ {17}(\S+) +(\d+) items$", out, re.MULTILINE)
    }
    assert received == SAMPLE_COUNTS
    assert "3. backfill    started by the activation, done: ok;" in out
    assert '"sidecar_status":202' in out
    assert "delivered: ShopiMind received POST events/trigger/acme_sale" in out
    assert 'deactivated) → 200 {"success":true}' in out
    assert (tmp_path / "workspace" / "sidecar.sqlite").exists()


async def test_a_refused_activation_exits_1_and_says_where_to_look(tmp_path: Path) -> None:
    # The PHP app refuses settings without an https:// api_url: the activation fails.
    returncode, out = await _simulate(tmp_path, {"api_url": "ftp://acme.example"})
    assert returncode == 1
    assert '(integration.activated) → 200 {"error":"connection_failed","success":false}' in out
    assert "your app's /test-connection refused these settings" in out
    assert "the activation failed: see sidecar.log in the workspace" in out
    assert "3. backfill" not in out


def test_simulate_without_an_app_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("APP_BASE_URL", "APP_SECRET", "APP_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["simulate"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "APP_BASE_URL: is required: the base URL of your running app's bridge",
        "APP_SECRET: is required (or APP_SECRET_FILE): the secret your app checks",
    ]
