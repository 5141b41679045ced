"""A sync engine wired to a real store and to a fake app and a fake ShopiMind on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from sidecar.bridge import AppBridge
from sidecar.declaration.model import Declaration, Meta, Provisioning, SyncStep
from sidecar.metrics.hooks import NO_METRICS, Metrics
from sidecar.outbound import RetryPolicy, new_http_client
from sidecar.security.cipher import AesGcmCipher
from sidecar.shopimind.client import ShopimindClient
from sidecar.state_keys import ACCESS_TOKEN, PROVISIONING_IDS
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore, open_sqlite_store
from sidecar.sync.engine import SyncDeps, SyncEngine
from sidecar.sync.leases import new_owner
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import FakeVendorApp
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX, FakeClock
from tests.harness import trio_wall_clock

TOKEN = "int_sync_token_41"
INSTALLATION = "inst_sync"
NO_WAIT = RetryPolicy(max_retries=1, base_seconds=0.01, cap_seconds=0.01, jitter=lambda: 0.0)


@dataclass
class SyncEnv:
    """Everything a sync test touches."""

    store: SqliteStore
    api: FakeShopimind
    app: FakeVendorApp
    bridge: AppBridge
    shopimind: ShopimindClient
    clock: FakeClock
    owner: str

    def engine(
        self,
        *steps: SyncStep,
        backfill_days: int = 365,
        overlap_seconds: int = 0,
        provisioning: Provisioning | None = None,
        metrics: Metrics = NO_METRICS,
        lease_ttl_seconds: float = 30.0,
    ) -> SyncEngine:
        declaration = Declaration(
            slug="t",
            meta=Meta(name="T", version="1.0.0"),
            sync=steps,
            provisioning=provisioning or Provisioning(),
        )
        return SyncEngine(
            SyncDeps(
                store=self.store,
                declaration=declaration,
                bridge=self.bridge,
                shopimind=self.shopimind,
                owner=self.owner,
                backfill_days=backfill_days,
                overlap_seconds=overlap_seconds,
                clock=self.clock,
                metrics=metrics,
                lease_ttl_seconds=lease_ttl_seconds,
            )
        )

    async def activate(
        self,
        installation_id: str = INSTALLATION,
        *,
        source_ids: dict[str, object] | None = None,
        def_ids: dict[str, object] | None = None,
        settings: dict[str, object] | None = None,
    ) -> None:
        """An active installation with a token and provisioning ids."""
        await self.store.installations.upsert(
            InstallationUpsert(installation_id=installation_id, status="active")
        )
        await self.store.state.set_secret(installation_id, ACCESS_TOKEN, TOKEN)
        await self.store.state.set_json(
            installation_id,
            PROVISIONING_IDS,
            {"sourceIds": source_ids or {}, "defIds": def_ids or {}},
        )
        if settings is not None:
            await self.store.state.set_json(installation_id, "config", settings)

    async def cursor_value(self, entity: str, source_key: str = "") -> str | None:
        cursor = await self.store.cursors.get(INSTALLATION, entity, source_key)
        return None if cursor is None else cursor.last_synced_at

    def pushed_ids(self, resource: str) -> list[str]:
        return [str(item.get("id")) for item in self.api.items(resource)]


@pytest.fixture
async def env(store: SqliteStore, clock: FakeClock, tmp_path: Path) -> AsyncIterator[SyncEnv]:
    api = FakeShopimind(tokens={TOKEN})
    app = FakeVendorApp(
        APP_SECRET, now=lambda: clock().timestamp()
    )  # same wall clock as the bridge
    async with (
        running(api) as api_url,
        running(app) as app_url,
        new_http_client() as api_http,
        new_http_client() as app_http,
    ):
        yield SyncEnv(
            store=store,
            api=api,
            app=app,
            bridge=AppBridge(
                base_url=app_url + app.prefix,
                secret=APP_SECRET,
                http=app_http,
                policy=NO_WAIT,
                clock=clock,
            ),
            shopimind=ShopimindClient(base_url=api_url, http=api_http, policy=NO_WAIT),
            clock=clock,
            owner=new_owner(),
        )


def step(entity: str = "customers", **changes: object) -> SyncStep:
    """A sync step with small pages, as tests want them."""
    base = SyncStep(entity=entity, target=entity, page_limit=10)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
async def vstore(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A store whose wall clock follows trio's (virtual under a MockClock)."""
    store = await open_sqlite_store(
        tmp_path / "s.sqlite",
        cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX)),
        clock=trio_wall_clock,
    )
    try:
        yield store
    finally:
        await store.aclose()
