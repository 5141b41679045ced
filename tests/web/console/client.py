"""A console session driven over HTTP (for the checks a browser cannot be asked to break):
its cookie jar, the CSRF token read from the last page, forms posted as a browser would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio

from sidecar.testing.vendor_app import Dataset
from tests.harness import Stack, lifecycle, sidecar_stack, trio_wall_clock

TOKEN = "adm_" + "5d1e8a7c" * 5
READONLY_TOKEN = "ro_" + "93b0c4f1" * 5
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
SAME_ORIGIN = {"sec-fetch-site": "same-origin"}


class Console:
    """One browser's session with the console of a running sidecar."""

    def __init__(self, stack: Stack, url: str) -> None:
        self.stack = stack
        self.url = url + "/admin/ui"
        self.http = httpx.AsyncClient(timeout=900, follow_redirects=False)
        self.csrf = ""

    async def get(self, path: str = "", **params: str) -> httpx.Response:
        """A page (paced by 1 s of trio time, so no limit refuses it); remembers its CSRF."""
        await trio.sleep(1)
        response = await self.http.get(self.url + path, params=params or None)
        if found := _CSRF.search(response.text):
            self.csrf = found.group(1)
        return response

    async def post(
        self,
        path: str,
        form: Mapping[str, str] | None = None,
        *,
        csrf: bool = True,
        headers: Mapping[str, str] = SAME_ORIGIN,
    ) -> httpx.Response:
        """A form posted from the console's own page (or not, as asked)."""
        await trio.sleep(1)
        data = dict(form or {})
        if csrf:
            data["csrf"] = self.csrf
        return await self.http.post(self.url + path, data=data, headers=dict(headers))

    async def sign_in(self, token: str = TOKEN) -> httpx.Response:
        """Sign in; then load the overview (and its CSRF token)."""
        response = await self.post("/sign-in", {"token": token}, csrf=False)
        if response.status_code == 303:
            await self.get()
        return response

    def audit(self) -> list[tuple[object, ...]]:
        """(actor, action, target, detail_json) of every audit row, oldest first."""
        return self.stack.query(
            "SELECT actor, action, target, detail_json FROM audit_log ORDER BY id"
        )


@asynccontextmanager
async def console_stack(tmp_path: Path, **env: str) -> AsyncIterator[Console]:
    """A sidecar (virtual clock) with the admin listener on its own port, and a console
    session on it (not signed in)."""
    settings = {
        "ADMIN_TOKEN": TOKEN,
        "ADMIN_READONLY_TOKEN": READONLY_TOKEN,
        "ADMIN_PORT": "0",
        "SYNC_INTERVAL_MINUTES": "0",  # only the syncs a test asks for
        **env,
    }
    async with sidecar_stack(tmp_path, clock=trio_wall_clock, env=settings) as stack:
        admin_urls = stack.running.admin_urls
        console = Console(stack, admin_urls[0] if admin_urls else stack.url)
        try:
            yield console
        finally:
            await console.http.aclose()


SCRIPT = '<script>document.title="pwned"</script>'
IMG = '"><img src=x onerror="document.title=1">'
CUSTOMERS = 40


def hostile_customer(index: int) -> dict[str, object]:
    """A customer whose note is markup; every 10th one has an email ShopiMind refuses."""
    email = "not-an-email" if index % 10 == 3 else f"jane.{index}@shop.example"
    return {"id": index, "email": email, "first_name": "Jane", "note": IMG}


async def seed(console: Console) -> str:
    """inst_1 installed with a shop name and data full of markup, its backfill done (4
    customers dead-lettered), one inbound sale queued; returns the inbound secret."""
    stack = console.stack
    stack.vendor.set_dataset("customers", Dataset(count=CUSTOMERS, item=hostile_customer))
    stack.vendor.set_dataset("products", Dataset(count=0))
    stack.vendor.sources["orders"] = []
    stack.shopimind.reject_when(
        lambda resource, item: None if "@" in str(item.get("email", "@")) else "invalid email"
    )
    for event in ("installed", "activated"):
        answer = await stack.webhook(lifecycle(event, "inst_1", shop_name=SCRIPT + IMG))
        assert answer.json() == {"success": True}, answer.text
    secret = str(stack.vendor.lifecycle_calls[-1].inbound_secret)
    assert await stack.finished_runs(1) == [("full", "partial")]
    sale = {"email": "jane.doe@shop.example", "comment": SCRIPT, "amount": 42}
    queued = await stack.inbound("sale", sale, secret=secret)
    assert queued.status_code == 202, queued.text
    return secret
