"""GET /ready: 503 from the moment the listener is up until every part runs, 200 while the
sidecar serves, 503 again during the drain that follows a stop — while the listener still
answers (a load balancer takes the replica out before its connections are refused)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

import sidecar.runtime
from sidecar.config import load_settings
from sidecar.declaration import load_declaration
from sidecar.runtime import Running, run_sidecar
from sidecar.sync.workers import run_workers
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import FakeVendorApp
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX, WEBHOOK_SECRET
from tests.harness import ACCESS_TOKEN, EXAMPLE


async def test_ready_follows_the_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listening: list[str] = []
    heard = trio.Event()
    parts_may_start = trio.Event()
    drain_may_end = trio.Event()
    original_listen = sidecar.runtime._listen
    original_workers = run_workers

    async def listen(*args: Any, **kwargs: Any) -> list[str]:
        urls: list[str] = await original_listen(*args, **kwargs)
        if not listening:
            listening.extend(urls)
            heard.set()
        return urls

    async def workers(*, task_status: Any = trio.TASK_STATUS_IGNORED, **kwargs: Any) -> None:
        await parts_may_start.wait()  # the workers are slow to come up…
        await original_workers(task_status=task_status, **kwargs)
        await drain_may_end.wait()  # …and to finish their last sync

    monkeypatch.setattr(sidecar.runtime, "_listen", listen)
    monkeypatch.setattr("sidecar.runtime.run_workers", workers)
    fake = FakeShopimind(tokens={ACCESS_TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    async with (
        running(fake) as api_url,
        running(vendor) as app_url,
        trio.open_nursery() as nursery,
    ):
        environ = {
            "INTEGRATION_FILE": str(EXAMPLE),
            "DATABASE_PATH": str(tmp_path / "sidecar.sqlite"),
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CREDENTIALS_KEY": CREDENTIALS_KEY_HEX,
            "APP_BASE_URL": app_url + vendor.prefix,
            "APP_SECRET": APP_SECRET,
            "SHOPIMIND_CORE_API_BASE": api_url,
            "PORT": "0",
            "DRAIN_TIMEOUT_SECONDS": "30",
        }
        settings = load_settings(environ).settings
        started: list[Running] = []
        ready = trio.Event()

        async def serve() -> None:
            started.append(
                await nursery.start(
                    lambda task_status: run_sidecar(
                        settings,
                        load_declaration(EXAMPLE),
                        handle_signals=False,
                        environ=environ,
                        task_status=task_status,
                    )
                )
            )
            ready.set()

        nursery.start_soon(serve)
        with trio.fail_after(30):
            await heard.wait()

        async def get(path: str) -> int:
            # A new connection each time: the listener itself is what is checked.
            async with httpx.AsyncClient(base_url=listening[0], timeout=10) as http:
                return (await http.get(path)).status_code

        assert await get("/ready") == 503  # listening, but the workers are not up yet
        assert await get("/health") == 200  # alive, though: not a reason to restart it
        parts_may_start.set()
        with trio.fail_after(30):
            await ready.wait()
        assert await get("/ready") == 200

        started[0].stop()
        await trio.testing.wait_all_tasks_blocked()
        assert await get("/ready") == 503  # draining: still answering, no longer ready
        drain_may_end.set()
