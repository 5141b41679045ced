"""The operator surface of a running sidecar, wired from its parts: the admin service
(its syncs on the workers' capacity), the admin token and rate limit, and `/metrics`
(the Prometheus registry with the state gauges read at each scrape)."""

from __future__ import annotations

from collections.abc import Callable

import trio

from sidecar.admin.service import AdminDeps, AdminService
from sidecar.admin.syncs import BackgroundSyncs
from sidecar.config import Settings
from sidecar.declaration import build_manifest
from sidecar.logs import get_logger
from sidecar.metrics.gauges import read_gauges
from sidecar.metrics.prometheus import PrometheusMetrics
from sidecar.peer_guard import circuit_states
from sidecar.security.tokens import TokenMatcher
from sidecar.sync.app_health import AppHealth
from sidecar.sync.due import SyncLag
from sidecar.web.contexts import ADMIN_RATE_BURST, ADMIN_RATE_PER_SECOND, AdminContext
from sidecar.web.rate_limit import RateLimiter
from sidecar.wiring import Parts

__all__ = ["admin_context", "announce_admin"]

_log = get_logger("runtime")


def admin_context(
    parts: Parts,
    metrics: PrometheusMetrics,
    *,
    limiter: trio.CapacityLimiter,
    app_health: AppHealth | None,
    readiness: Callable[[], bool],
    sync_lag: Callable[[], SyncLag] | None = None,
) -> tuple[AdminContext, BackgroundSyncs]:
    """The admin API's context: its service, its token, its limit and the metrics."""
    settings, store = parts.settings, parts.store
    operator_syncs = BackgroundSyncs(parts.sync_engine(), limiter)

    def runtime_status() -> dict[str, object]:
        stats = limiter.statistics()
        return {
            "ready": readiness(),
            "sync_workers": {
                "in_use": stats.borrowed_tokens,
                "total": int(stats.total_tokens),
                "waiting": stats.tasks_waiting,
            },
            "app": None if app_health is None else app_health.state,
            "circuits": circuit_states(parts.peers),
            "sync_lag": None if sync_lag is None else sync_lag().as_json(),
        }

    async def render_metrics() -> bytes:
        snapshot = await read_gauges(
            store,
            database_path=None if settings.database_url else settings.database_path,
            limiter=limiter,
            app_healthy=(lambda: None) if app_health is None else app_health.healthy,
            clock=parts.clock,
            circuits=circuit_states(parts.peers),
            database_pool=parts.database_pool,
            sync_lag=sync_lag,
        )
        return metrics.render(snapshot)

    service = AdminService(
        AdminDeps(
            store=store,
            declaration=parts.declaration,
            manifest=build_manifest(parts.declaration),
            bridge=parts.bridge,
            shopimind=parts.shopimind,
            owner=parts.owner,
            start_sync=operator_syncs,
            clock=parts.clock,
            lease_ttl_seconds=settings.lease_ttl_seconds,
            metrics=metrics,
            runtime_status=runtime_status,
        )
    )
    token = settings.admin_token
    context = AdminContext(
        service=service,
        token=None if token is None else TokenMatcher(token.reveal()),
        limiter=RateLimiter(burst=ADMIN_RATE_BURST, per_second=ADMIN_RATE_PER_SECOND),
        metrics=render_metrics,
        readonly_token=(
            None
            if settings.admin_readonly_token is None
            else TokenMatcher(settings.admin_readonly_token.reveal())
        ),
        session_idle_seconds=settings.admin_session_minutes * 60.0,
        cookie_secure=settings.admin_cookie_secure,
        trusted_proxies=settings.trusted_proxies,
    )
    return context, operator_syncs


def announce_admin(settings: Settings) -> None:
    """Say at startup where the admin API is, and whether it can be used at all."""
    if settings.admin_token is None:
        _log.info("admin API disabled: ADMIN_TOKEN is not set (every admin request gets 401)")
    elif settings.admin_port is None:
        _log.warning(
            "the admin API and /metrics are served on the public listener; set ADMIN_PORT "
            "to serve them on a listener of their own (ADMIN_HOST, loopback by default)"
        )
