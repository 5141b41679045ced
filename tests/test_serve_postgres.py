"""The real `serve` process on PostgreSQL while the server goes away and comes back:
/health and /ready answer 503 meanwhile, and recover by themselves, without a restart."""

from __future__ import annotations

import signal

import httpx
import pytest
import trio

from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import FakeVendorApp
from tests.conftest import APP_SECRET
from tests.harness import ACCESS_TOKEN, process_env
from tests.postgres import PostgresCluster, new_schema
from tests.test_serve_process import STARTUP_TIMEOUT_SECONDS, sidecar_process


async def _statuses(client: httpx.AsyncClient) -> tuple[int, int]:
    return (await client.get("/health")).status_code, (await client.get("/ready")).status_code


async def test_health_and_ready_follow_the_database(
    tmp_path, postgres_server: PostgresCluster
) -> None:
    if not postgres_server.owned:
        pytest.skip("SIDECAR_TEST_POSTGRES_URL: the tests cannot stop that server")
    fake = FakeShopimind(tokens={ACCESS_TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    async with running(fake) as api_url, running(vendor) as app_url:
        env = process_env(
            database=tmp_path / "unused.sqlite",
            api_url=api_url,
            app_url=app_url + vendor.prefix,
            PORT="0",
            SYNC_INTERVAL_MINUTES="0",
        )
        env = {k: v for k, v in env.items() if k != "DATABASE_PATH"} | {
            "DATABASE_URL": postgres_server.url,
            "DATABASE_SCHEMA": new_schema(),
        }
        async with sidecar_process(env) as (process, log):
            with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
                ready = await log.until("sidecar ready")
            base = str(ready["listen"][0])  # type: ignore[index]
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                assert await _statuses(client) == (200, 200)
                await trio.to_thread.run_sync(postgres_server.stop)
                try:
                    assert await _statuses(client) == (503, 503)
                    assert (await client.get("/health")).json()["db"] == "error"
                finally:
                    await trio.to_thread.run_sync(postgres_server.start)
                # Back without a restart of ours, once the pool has new connections.
                with trio.fail_after(60):
                    while await _statuses(client) != (200, 200):  # noqa: ASYNC110
                        await trio.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                await log.drain()
                assert await process.wait() == 0
