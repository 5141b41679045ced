"""A real browser on the console of a real `serve` process.

Chromium is Debian's (`/usr/bin/chromium`), driven by Playwright from PyPI, which never
downloads a browser here. Without either, the browser tests are skipped with one line,
unless SIDECAR_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.

The sidecar runs as a process (`python -m sidecar serve`) talking to the fake ShopiMind
and the fake app served by this test's trio loop; Playwright's sync API blocks, so a
test's browser part runs in a worker thread (`trio.to_thread`), and calls back into the
trio loop (the fakes) with `trio.from_thread`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio

from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import Dataset, FakeVendorApp
from tests.conftest import APP_SECRET
from tests.harness import ACCESS_TOKEN, inbound_headers, lifecycle, process_env, signed_headers
from tests.test_serve_process import sidecar_process
from tests.web.console.client import (
    CUSTOMERS,
    IMG,
    READONLY_TOKEN,
    SCRIPT,
    TOKEN,
    hostile_customer,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_SECONDS = 60
WAIT_MS = 30_000


def require_browser() -> None:
    """Skip (or fail, under SIDECAR_REQUIRE_BROWSER=1) when Chromium or Playwright is missing."""
    missing = [
        what
        for what, present in (
            ("playwright (pip install playwright)", importlib.util.find_spec("playwright")),
            (f"chromium ({CHROMIUM}; apt-get install chromium)", CHROMIUM.exists()),
        )
        if not present
    ]
    if not missing:
        return
    reason = "browser tests need " + " and ".join(missing)
    if os.environ.get("SIDECAR_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (SIDECAR_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched by Playwright (which downloads nothing)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Served:
    """A `serve` process with its fakes: where its console is, and its database."""

    public_url: str
    admin_url: str
    database: Path
    shopimind: FakeShopimind
    vendor: FakeVendorApp
    inbound_secret: str = ""

    @property
    def console(self) -> str:
        return self.admin_url + "/admin/ui"

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the live database through a read-only connection."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as connection:
            return connection.execute(sql, params).fetchall()

    async def send_sale(self) -> None:
        """The app sends one inbound sale (queued, then delivered to ShopiMind)."""
        sale = json.dumps(
            {"email": "jane.doe@shop.example", "comment": SCRIPT, "amount": 42}
        ).encode()
        async with httpx.AsyncClient(base_url=self.public_url, timeout=60) as client:
            queued = await client.post(
                "/inbound/sale",
                content=sale,
                headers=inbound_headers(sale, secret=self.inbound_secret),
            )
        assert queued.status_code == 202, queued.text

    def audit(self, action: str) -> list[tuple[str, str | None, object]]:
        """(actor, target, outcome) of the audit rows of `action`, oldest first."""
        rows = self.query(
            "SELECT actor, target, detail_json FROM audit_log WHERE action = ? ORDER BY id", action
        )
        return [(actor, target, json.loads(detail)["outcome"]) for actor, target, detail in rows]


@asynccontextmanager
async def served_sidecar(tmp_path: Path) -> AsyncIterator[Served]:
    """A `serve` process (admin listener on its own port) and its fakes, with inst_1
    installed under a shop name full of markup, backfilled (4 customers dead-lettered:
    ShopiMind refuses their email), and one inbound sale delivered."""
    fake = FakeShopimind(tokens={ACCESS_TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    vendor.set_dataset("customers", Dataset(count=CUSTOMERS, item=hostile_customer))
    vendor.set_dataset("products", Dataset(count=0))
    vendor.sources["orders"] = []
    fake.reject_when(
        lambda resource, item: None if "@" in str(item.get("email", "@")) else "invalid email"
    )
    database = tmp_path / "sidecar.sqlite"
    async with running(fake) as api_url, running(vendor) as app_url:
        env = process_env(
            database=database,
            api_url=api_url,
            app_url=app_url + vendor.prefix,
            PORT="0",
            ADMIN_PORT="0",
            ADMIN_TOKEN=TOKEN,
            ADMIN_READONLY_TOKEN=READONLY_TOKEN,
            SYNC_INTERVAL_MINUTES="0",
            DRAIN_TIMEOUT_SECONDS="2",
        )
        async with sidecar_process(env) as (process, log):
            with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
                ready = await log.until("sidecar ready")
            served = Served(
                public_url=str(ready["listen"][0]),  # type: ignore[index]
                admin_url=str(ready["admin"][0]),  # type: ignore[index]
                database=database,
                shopimind=fake,
                vendor=vendor,
            )
            async with httpx.AsyncClient(base_url=served.public_url, timeout=60) as client:
                for event in ("installed", "activated"):
                    body = json.dumps(lifecycle(event, "inst_1", shop_name=SCRIPT + IMG)).encode()
                    answer = await client.post(
                        "/webhook/receive", content=body, headers=signed_headers(body)
                    )
                    assert answer.json() == {"success": True}, answer.text
                served.inbound_secret = str(vendor.lifecycle_calls[-1].inbound_secret)
                with trio.fail_after(STARTUP_TIMEOUT_SECONDS):
                    await log.until("sync finished")  # the activation's backfill
            await served.send_sale()
            yield served
            process.terminate()
            with trio.fail_after(30):
                await log.drain()
                await process.wait()


async def in_browser(scenario: Callable[[Browser], None]) -> None:
    """Run `scenario` with a fresh Chromium, in a worker thread (Playwright blocks)."""

    def run() -> None:
        with chromium() as browser:
            scenario(browser)

    await trio.to_thread.run_sync(run)


def sign_in(page: Page, served: Served, token: str = TOKEN) -> None:
    """Sign in through the form, as a person would (type, press Enter)."""
    page.goto(served.console)
    page.get_by_label("Admin token").fill(token)
    page.get_by_label("Admin token").press("Enter")
    page.wait_for_url(served.console)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
