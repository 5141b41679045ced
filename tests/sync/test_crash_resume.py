"""A real `shopimind-sidecar sync` process killed with SIGKILL in the middle of a backfill:
restarted, it resumes from its resume point instead of starting over, and every item
reaches ShopiMind (a few duplicates from the page in flight, far fewer than a replay)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from sidecar.security.cipher import AesGcmCipher
from sidecar.state_keys import ACCESS_TOKEN, PROVISIONING_IDS
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import open_sqlite_store
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import Dataset, FakeVendorApp
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX
from tests.harness import process_env

ITEMS = 20_000
TOKEN = "int_crash_test"
DECLARATION = """
slug = "crash-test"
[meta]
name = "Crash test"
version = "1.0.0"
[[sync]]
entity = "customers"
target = "customers"
page_limit = 500
"""


class Tripwire:
    """ASGI wrapper: sets `tripped` once `after` requests to `path` were answered."""

    def __init__(self, app: Any, path: str, after: int) -> None:
        self.app = app
        self.path = path
        self.remaining = after
        self.tripped = trio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["path"] == self.path:
            self.remaining -= 1
            if self.remaining <= 0:
                self.tripped.set()


async def _prepare(database: Path) -> None:
    store = await open_sqlite_store(
        database, cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX))
    )
    await store.installations.upsert(InstallationUpsert(installation_id="inst_1", status="active"))
    await store.state.set_secret("inst_1", ACCESS_TOKEN, TOKEN)
    await store.state.set_json("inst_1", PROVISIONING_IDS, {"sourceIds": {}, "defIds": {}})
    await store.aclose()


async def test_sigkill_mid_backfill_then_resume(tmp_path: Path) -> None:
    api = FakeShopimind(tokens={TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    vendor.set_dataset("customers", Dataset(count=ITEMS))
    tripwire = Tripwire(api, "/v1/customers", after=120)  # 120 chunks of 50: 6,000 items
    declaration = tmp_path / "integration.toml"
    declaration.write_text(DECLARATION, encoding="utf-8")
    database = tmp_path / "sidecar.sqlite"
    await _prepare(database)
    async with running(tripwire) as api_url, running(vendor) as app_url:
        env = process_env(
            database=database,
            api_url=api_url,
            app_url=app_url + vendor.prefix,
            declaration=declaration,
        )
        command = [sys.executable, "-m", "sidecar", "sync", "inst_1"]
        process = await trio.lowlevel.open_process(
            [*command, "--full"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            with trio.fail_after(120):
                await tripwire.tripped.wait()
        finally:
            process.kill()  # SIGKILL: no cleanup of any kind
            await process.wait()
        before_restart = api.count("customers")
        assert 6_000 <= before_restart < ITEMS

        restarted = await trio.run_process(
            command, env=env, capture_stdout=True, capture_stderr=True, check=False
        )
        assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]

    received = [item["id"] for item in api.items("customers")]
    assert set(received) == {f"item-{i}" for i in range(ITEMS)}
    duplicates = len(received) - ITEMS
    assert duplicates <= 1_000, duplicates  # the page in flight at most, not a replay
    assert "resumed" in restarted.stdout.decode()
    store = await open_sqlite_store(
        database, cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX))
    )
    runs = await store.runs.recent("inst_1")
    await store.aclose()
    assert [(run.kind, run.status) for run in runs] == [  # newest first
        ("full", "ok"),  # the backfill, continued: still a full run
        ("full", "interrupted"),  # killed: not a failure of the sync itself
    ]
    assert json.loads(runs[0].summary_json or "{}")["resumed"] is True
    assert "interrupted" in (runs[1].summary_json or "")
