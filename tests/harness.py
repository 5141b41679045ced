"""A whole sidecar in the test's trio run: `run_sidecar` on a free port of 127.0.0.1, with a
fake ShopiMind API and a fake vendor app on loopback, and helpers to sign webhooks."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio

from sidecar.config import load_settings
from sidecar.declaration import load_declaration
from sidecar.runtime import Running, run_sidecar
from sidecar.security.signature import sign
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX, WEBHOOK_SECRET
from tests.fakes.server import running
from tests.fakes.shopimind_api import FakeShopimind
from tests.fakes.vendor_app import FakeVendorApp

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "integration.toml"
ACCESS_TOKEN = "int_live_7c2e9b41d0a35f86"
SHOP_SECRET_CONFIG = "acme-key-DO-NOT-LEAK-91f3"


def raw_database_bytes(path: Path) -> bytes:
    """The SQLite file and its -wal/-shm companions, as they are on disk."""
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(file.read_bytes() for file in files if file.exists())


def configs(**overrides: object) -> dict[str, object]:
    """A merchant configuration valid for the example declaration."""
    return {
        "api_url": "https://api.acme-pos.example",
        "api_key": SHOP_SECRET_CONFIG,
        "store_id": "store-1",
        "price_display": "tax_included",
        "sync_products": True,
        "sync_loyalty": False,
        **overrides,
    }


def lifecycle(
    event: str, installation_id: str | None = "inst_1", **fields: object
) -> dict[str, object]:
    """A lifecycle payload as ShopiMind sends it."""
    payload: dict[str, object] = {"event": f"integration.{event}", **fields}
    if installation_id is not None:
        payload["installation_id"] = installation_id
    if event in ("installed", "activated"):
        payload.setdefault("access_token", ACCESS_TOKEN)
        payload.setdefault("configs", configs())
        payload.setdefault("shop_domain", "bistro.example")
        payload.setdefault("shop_name", "Bistro")
    return payload


def signed_headers(
    body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """The headers ShopiMind sends with `body`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "content-type": "application/json",
        "x-shopimind-timestamp": ts,
        "x-shopimind-signature": sign(secret, ts, body),
    }


@dataclass
class Stack:
    """A running sidecar and its two fake peers."""

    url: str
    shopimind: FakeShopimind
    vendor: FakeVendorApp
    http: httpx.AsyncClient
    database: Path
    running: Running
    sent: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """POST raw bytes to the sidecar."""
        return await self.http.post(self.url + path, content=body, headers=dict(headers or {}))

    async def webhook(
        self,
        payload: object,
        *,
        path: str = "/webhook/receive",
        secret: str = WEBHOOK_SECRET,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """Sign `payload` as ShopiMind does and POST it; remember it for `replay`."""
        body = json.dumps(payload).encode()
        headers = signed_headers(body, secret=secret, timestamp=timestamp)
        self.sent.append((body, headers))
        return await self.post(path, body, headers)

    async def replay(self, index: int = -1, path: str = "/webhook/receive") -> httpx.Response:
        """Send an earlier webhook again, byte for byte, with its original signature."""
        body, headers = self.sent[index]
        return await self.post(path, body, headers)

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Read the live database through a separate read-only connection."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as connection:
            return connection.execute(sql, params).fetchall()

    def status(self, installation_id: str = "inst_1") -> object:
        """The installation's status, or None."""
        rows = self.query(
            "SELECT status FROM installations WHERE installation_id = ?", installation_id
        )
        return rows[0][0] if rows else None


@asynccontextmanager
async def sidecar_stack(
    tmp_path: Path,
    *,
    declaration: Path = EXAMPLE,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """Start fakes and a sidecar; stop the sidecar gracefully at the end of the block."""
    fake = FakeShopimind(tokens={ACCESS_TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    database = tmp_path / "sidecar.sqlite"
    async with (
        running(fake) as api_url,
        running(vendor) as app_url,
        # Generous: under a MockClock, a sidecar retrying a slow peer uses minutes of
        # virtual time while the test waits for its answer.
        httpx.AsyncClient(timeout=900) as http,
        trio.open_nursery() as nursery,
    ):
        environ = {
            "INTEGRATION_FILE": str(declaration),
            "DATABASE_PATH": str(database),
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CREDENTIALS_KEY": CREDENTIALS_KEY_HEX,
            "APP_BASE_URL": app_url + vendor.prefix,
            "APP_SECRET": APP_SECRET,
            "SHOPIMIND_CORE_API_BASE": api_url,
            "PORT": "0",
            "DRAIN_TIMEOUT_SECONDS": "1",
            **(env or {}),
        }
        settings = load_settings(environ).settings
        started: Running = await nursery.start(
            lambda task_status: run_sidecar(
                settings,
                load_declaration(declaration),
                handle_signals=False,
                environ=environ,
                task_status=task_status,
            )
        )
        try:
            yield Stack(
                url=started.public_urls[0],
                shopimind=fake,
                vendor=vendor,
                http=http,
                database=database,
                running=started,
            )
        finally:
            # Close our connections first: open keep-alive connections would make the
            # graceful shutdown wait for its full drain timeout.
            await http.aclose()
            started.stop()
