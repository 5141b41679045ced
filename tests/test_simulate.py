"""`shopimind-sidecar simulate` against the PHP sample app, as a vendor runs it: exit 0, and
ShopiMind received exactly the app's data and its inbound call."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import trio

from tests.conftest import APP_SECRET
from tests.harness import EXAMPLE
from tests.sample_apps import PREFIX, SAMPLE_COUNTS, sample_app
from tests.test_sample_apps_serve import free_port


async def test_simulate_against_the_php_app_exits_0_with_the_same_counts(tmp_path: Path) -> None:
    port = free_port()
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"api_key": "acme-test-key", "sync_loyalty": True}))
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
                str(settings),
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
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
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
