"""The sidecar's parts, built from its settings in one place.

The runtime and the CLI commands that work on the live store (`sync`, `installations`…)
open the same parts, the same way: the store, one HTTP client per peer, the ShopiMind
client, the app bridge, and this process's id (REPLICA_ID) as lease owner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from sidecar.bridge import DEFAULT_BRIDGE_TIMEOUT_SECONDS, AppBridge, AppProbe
from sidecar.clock import Clock, system_clock
from sidecar.config import Settings
from sidecar.declaration.model import Declaration
from sidecar.metrics.hooks import NO_METRICS, Metrics
from sidecar.outbound import DEFAULT_TIMEOUT_SECONDS, RetryPolicy, new_http_client, tls_context
from sidecar.peer_guard import PeerGuard
from sidecar.security.cipher import make_cipher
from sidecar.shopimind.client import ShopimindClient
from sidecar.store.interface import Store
from sidecar.store.records import PoolStatistics
from sidecar.store.selection import OpenedStore, open_selected_store
from sidecar.store_target import store_target
from sidecar.sync.engine import SyncDeps, SyncEngine

__all__ = [
    "INTERACTIVE_POLICY",
    "INTERACTIVE_TIMEOUT_SECONDS",
    "Parts",
    "open_parts",
    "open_settings_store",
]

INTERACTIVE_POLICY = RetryPolicy(max_retries=1, base_seconds=0.2, cap_seconds=0.5)
INTERACTIVE_TIMEOUT_SECONDS = 10.0
"""For calls someone waits on (the config wizard, a direct inbound call): one quick retry."""
_STANDARD = RetryPolicy()
"""For the rest (syncs, provisioning, the outbox): retries with backoff, PROTOCOL §6."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Parts:
    """Everything built from the settings, shared by the runtime and the CLI."""

    settings: Settings
    declaration: Declaration
    store: Store
    shopimind: ShopimindClient
    bridge: AppBridge
    interactive_shopimind: ShopimindClient
    """The same API with INTERACTIVE_POLICY."""
    interactive_bridge: AppBridge
    """The same app with INTERACTIVE_POLICY."""
    owner: str
    """This process's id in leases and run rows: REPLICA_ID."""
    clock: Clock
    app_probe: AppProbe | None = None
    """The app's health endpoint (APP_HEALTH_PATH), when one is configured."""
    metrics: Metrics = NO_METRICS
    peers: tuple[PeerGuard, ...] = ()
    """The rate limits and circuit breakers of the ShopiMind API and the app."""
    database_pool: Callable[[], PoolStatistics] | None = None
    """The PostgreSQL pool's statistics (None on SQLite)."""

    def sync_engine(self) -> SyncEngine:
        """The sync engine, configured from the settings."""
        return SyncEngine(
            SyncDeps(
                store=self.store,
                declaration=self.declaration,
                bridge=self.bridge,
                shopimind=self.shopimind,
                owner=self.owner,
                backfill_days=self.settings.backfill_days,
                overlap_seconds=self.settings.overlap_seconds,
                clock=self.clock,
                metrics=self.metrics,
                push_concurrency=self.settings.push_concurrency,
                lease_ttl_seconds=self.settings.lease_ttl_seconds,
            )
        )


@asynccontextmanager
async def _open_store(settings: Settings, clock: Clock) -> AsyncIterator[OpenedStore]:
    key = settings.credentials_key.reveal() if settings.credentials_key else None
    opened = await open_selected_store(store_target(settings), cipher=make_cipher(key), clock=clock)
    try:
        yield opened
    finally:
        with trio.CancelScope(shield=True):
            await opened.store.aclose()


@asynccontextmanager
async def open_settings_store(
    settings: Settings, *, clock: Clock = system_clock
) -> AsyncIterator[Store]:
    """The store (DATABASE_URL, else DATABASE_PATH), migrated, with the configured cipher;
    closed on exit."""
    async with _open_store(settings, clock) as opened:
        yield opened.store


@asynccontextmanager
async def open_parts(
    settings: Settings,
    declaration: Declaration,
    *,
    clock: Clock = system_clock,
    metrics: Metrics = NO_METRICS,
) -> AsyncIterator[Parts]:
    """Open the store and the HTTP clients; close them (the store last) on exit.

    Every call to a peer is counted in `metrics` by peer and outcome.
    """
    tls = tls_context()  # one CA bundle for both clients
    async with (
        _open_store(settings, clock) as opened,
        new_http_client(tls=tls, replica_id=settings.replica_id) as api_http,
        new_http_client(tls=tls, replica_id=settings.replica_id) as app_http,
    ):
        api_base, app_base = settings.shopimind_core_api_base, settings.app_base_url
        secret = settings.app_secret.reveal()
        limits = settings.outbound
        api_guard = PeerGuard(
            "shopimind",
            rate_per_second=limits.shopimind_requests_per_second,
            rate_per_installation=limits.shopimind_requests_per_second_per_installation,
            failure_threshold=limits.circuit_failure_threshold,
            cool_down_seconds=limits.circuit_cool_down_seconds,
        )
        app_guard = PeerGuard(
            "app",
            failure_threshold=limits.circuit_failure_threshold,
            cool_down_seconds=limits.circuit_cool_down_seconds,
        )

        def to_api(outcome: str) -> None:
            metrics.outbound_call("shopimind", outcome)

        def to_app(outcome: str) -> None:
            metrics.outbound_call("app", outcome)

        def api(
            policy: RetryPolicy = _STANDARD, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
        ) -> ShopimindClient:
            return ShopimindClient(
                base_url=api_base,
                http=api_http,
                clock=clock,
                observe=to_api,
                policy=policy,
                timeout_seconds=timeout_seconds,
                guard=api_guard,
            )

        def app(
            policy: RetryPolicy = _STANDARD,
            timeout_seconds: float = DEFAULT_BRIDGE_TIMEOUT_SECONDS,
        ) -> AppBridge:
            return AppBridge(
                base_url=app_base,
                secret=secret,
                http=app_http,
                clock=clock,
                observe=to_app,
                policy=policy,
                timeout_seconds=timeout_seconds,
                guard=app_guard,
            )

        probe = None
        if settings.app_health_path is not None:
            probe = AppProbe(
                base_url=app_base,
                path=settings.app_health_path,
                secret=secret,
                http=app_http,
                clock=clock,
                observe=to_app,
            )
        yield Parts(
            settings=settings,
            declaration=declaration,
            store=opened.store,
            shopimind=api(),
            bridge=app(),
            interactive_shopimind=api(INTERACTIVE_POLICY, INTERACTIVE_TIMEOUT_SECONDS),
            interactive_bridge=app(INTERACTIVE_POLICY, INTERACTIVE_TIMEOUT_SECONDS),
            owner=settings.replica_id,
            clock=clock,
            app_probe=probe,
            metrics=metrics,
            peers=(api_guard, app_guard),
            database_pool=opened.pool_statistics,
        )
