"""A whole sidecar in the test's trio run: `run_sidecar` on a free port of 127.0.0.1, with a
fake ShopiMind API and a fake vendor app on loopback, and helpers to sign webhooks."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import trio

from sidecar.clock import Clock, system_clock
from sidecar.config import load_settings
from sidecar.declaration import load_declaration
from sidecar.runtime import Running, run_sidecar
from sidecar.security.signature import sign
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import FakeVendorApp
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX, WEBHOOK_SECRET

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "integration.toml"
ACCESS_TOKEN = "int_live_7c2e9b41d0a35f86"
SHOP_SECRET_CONFIG = "acme-key-DO-NOT-LEAK-91f3"


TRIO_EPOCH = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def trio_wall_clock() -> datetime:
    """Wall time that follows trio's clock (virtual under a MockClock)."""
    return TRIO_EPOCH + timedelta(seconds=trio.current_time())


def process_env(
    *, database: Path, api_url: str, app_url: str, declaration: Path = EXAMPLE, **extra: str
) -> dict[str, str]:
    """The environment of a real sidecar process talking to the fakes (`app_url` with the
    fake app's prefix). `extra` adds or overrides variables."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "INTEGRATION_FILE": str(declaration),
        "DATABASE_PATH": str(database),
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CREDENTIALS_KEY": CREDENTIALS_KEY_HEX,
        "APP_BASE_URL": app_url,
        "APP_SECRET": APP_SECRET,
        "SHOPIMIND_CORE_API_BASE": api_url,
        **extra,
    }


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


class LogWatch(logging.Handler):
    """Counts the sidecar's log lines by message, so a test can wait for one without polling.

    Attach it to a logger of parts that log from trio tasks only (`sidecar.outbox`,
    `sidecar.inbound`): `emit` wakes waiters with a `trio.Event`.
    """

    def __init__(self, logger: str = "sidecar.outbox") -> None:
        super().__init__(logging.DEBUG)
        self._logger = logging.getLogger(logger)
        self._level = self._logger.level
        self.counts: Counter[str] = Counter()
        self.records: list[logging.LogRecord] = []
        self._changed = trio.Event()

    def __enter__(self) -> LogWatch:
        self._logger.addHandler(self)
        self._logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.counts[record.getMessage()] += 1
        self._changed.set()

    def meta(self, message: str) -> list[dict[str, object]]:
        """The metadata of each line logged with `message`."""
        return [
            dict(getattr(r, "sidecar_meta", {})) for r in self.records if r.getMessage() == message
        ]

    async def wait_for(self, message: str, count: int = 1) -> None:
        """Return once `message` was logged `count` times in all."""
        while self.counts[message] < count:
            self._changed = trio.Event()
            await self._changed.wait()


def inbound_headers(
    body: bytes,
    *,
    secret: str,
    installation_id: str | None = "inst_1",
    timestamp: int | None = None,
    idempotency_key: str | None = None,
) -> dict[str, str]:
    """The headers the vendor's app sends with an inbound call (PROTOCOL §5)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "content-type": "application/json",
        "x-integration-timestamp": ts,
        "x-integration-signature": sign(secret, ts, body),
    }
    if installation_id is not None:
        headers["x-integration-installation"] = installation_id
    if idempotency_key is not None:
        headers["x-idempotency-key"] = idempotency_key
    return headers


@dataclass
class Stack:
    """A running sidecar and its two fake peers."""

    url: str
    shopimind: FakeShopimind
    vendor: FakeVendorApp
    http: httpx.AsyncClient
    database: Path
    running: Running
    environ: dict[str, str] = field(default_factory=dict)
    """The sidecar's environment (e.g. for a CLI process on the same store)."""
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

    async def activate(self, installation_id: str = "inst_1") -> str:
        """Install and activate `installation_id`; return the inbound secret the app got."""
        for event in ("installed", "activated"):
            answer = await self.webhook(lifecycle(event, installation_id))
            assert answer.json() == {"success": True}, answer.text
        call = self.vendor.lifecycle_calls[-1]
        assert call.event == "activated"
        return str(call.inbound_secret)

    async def inbound(
        self,
        action: str,
        payload: object,
        *,
        secret: str,
        installation_id: str | None = "inst_1",
        idempotency_key: str | None = None,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """Sign `payload` as the vendor's app does and POST it to `/inbound/<action>`."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = inbound_headers(
            body,
            secret=secret,
            installation_id=installation_id,
            timestamp=timestamp,
            idempotency_key=idempotency_key,
        )
        return await self.post(f"/inbound/{action}", body, headers)

    async def inbound_status(
        self, event_id: object, *, secret: str, installation_id: str = "inst_1"
    ) -> httpx.Response:
        """`GET /inbound/events/<id>`, signed over an empty body."""
        headers = inbound_headers(b"", secret=secret, installation_id=installation_id)
        return await self.http.get(f"{self.url}/inbound/events/{event_id}", headers=headers)

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Read the live database through a separate read-only connection."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as connection:
            return connection.execute(sql, params).fetchall()

    @contextmanager
    def writable(self) -> Iterator[sqlite3.Connection]:
        """A second connection to the live database, committed at the end of the block."""
        connection = sqlite3.connect(self.database, timeout=10)
        try:
            with connection:
                yield connection
        finally:
            connection.close()

    async def finished_runs(self, count: int) -> list[tuple[object, ...]]:
        """`(kind, status)` of the closed sync runs, once there are `count` of them (trio
        time: free under a MockClock)."""
        with trio.fail_after(3600):
            while True:
                done = self.query(
                    "SELECT kind, status FROM sync_runs WHERE status <> 'running' ORDER BY id"
                )
                if len(done) >= count:
                    return done
                await trio.sleep(1)

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
    clock: Clock = system_clock,
) -> AsyncIterator[Stack]:
    """Start fakes and a sidecar; stop the sidecar gracefully at the end of the block.

    `clock` is the wall clock of the sidecar and of the fake app (e.g. `trio_wall_clock`
    to move both with trio's MockClock); webhook signatures always use real time.
    """
    fake = FakeShopimind(tokens={ACCESS_TOKEN})
    vendor = FakeVendorApp(APP_SECRET, now=lambda: clock().timestamp())
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
                clock=clock,
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
                environ=environ,
            )
        finally:
            # Close our connections first: open keep-alive connections would make the
            # graceful shutdown wait for its full drain timeout.
            await http.aclose()
            started.stop()
