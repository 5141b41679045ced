"""Two processes on one database — `serve` and a `sync` from the CLI — never sync the same
installation at once: the installation's lease lives in the store, not in memory."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import httpx
import trio

from sidecar.clock import parse_timestamp
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import Dataset, FakeVendorApp
from tests.conftest import APP_SECRET
from tests.harness import ACCESS_TOKEN, lifecycle, process_env, signed_headers
from tests.sync.test_crash_resume import Tripwire
from tests.test_serve_process import sidecar_process


class Held:
    """ASGI wrapper: once `tripped` is set, requests wait until `release` is set: the
    backfill in `serve` cannot finish before the CLI has tried (however slow its start)."""

    def __init__(self, app: Any, tripped: trio.Event) -> None:
        self.app, self.tripped = app, tripped
        self.release = trio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.tripped.is_set():
            await self.release.wait()
        await self.app(scope, receive, send)


async def test_serve_and_cli_never_sync_one_installation_at_once(tmp_path: Path) -> None:
    api = FakeShopimind(tokens={ACCESS_TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    vendor.set_dataset("customers", Dataset(count=3_000))
    vendor.sources["orders"] = ["store-1"]  # the example's other steps, small
    vendor.set_dataset("orders", Dataset(count=10), source_key="store-1")
    vendor.set_dataset("products", Dataset(count=10))
    tripwire = Tripwire(api, "/v1/customers", after=10)
    held = Held(tripwire, tripwire.tripped)
    database = tmp_path / "sidecar.sqlite"
    async with running(held) as api_url, running(vendor) as app_url:
        env = process_env(
            database=database,
            api_url=api_url,
            app_url=app_url + vendor.prefix,
            PORT="0",
            DRAIN_TIMEOUT_SECONDS="1",
        )
        async with sidecar_process(env) as (process, log):
            with trio.fail_after(60):
                ready = await log.until("sidecar ready")
            async with httpx.AsyncClient(base_url=str(ready["listen"][0]), timeout=60) as client:  # type: ignore[index]
                for event in ("installed", "activated"):
                    body = json.dumps(lifecycle(event)).encode()
                    answer = await client.post(
                        "/webhook/receive", content=body, headers=signed_headers(body)
                    )
                    assert answer.json() == {"success": True}
            with trio.fail_after(60):
                await tripwire.tripped.wait()  # the backfill is running in `serve`
            busy = await trio.run_process(
                [sys.executable, "-m", "sidecar", "sync", "inst_1"],
                env=env,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            held.release.set()
            assert busy.returncode == 1
            assert "is already being synced" in busy.stderr.decode()
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(60):
                await log.drain()
                assert await process.wait() == 0
        after = await trio.run_process(
            [sys.executable, "-m", "sidecar", "sync", "inst_1"],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert after.returncode == 0, after.stderr.decode()[-2000:]
    assert {item["id"] for item in api.items("customers")} == {f"item-{i}" for i in range(3_000)}
    rows = [
        (parse_timestamp(str(started)), parse_timestamp(str(finished)), str(owner))
        for started, finished, owner in _runs(database)
    ]
    assert len(rows) == 2  # the busy CLI attempt opened no run
    assert rows[0][2] != rows[1][2]  # two processes
    assert rows[0][1] <= rows[1][0]  # the second started after the first ended


def _runs(database: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(
            "SELECT started_at, finished_at, owner FROM sync_runs ORDER BY id"
        ).fetchall()
