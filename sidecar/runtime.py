"""The sidecar as one process: one trio nursery running every part (DESIGN.md, "Shape").

    run_sidecar
    ├── parts (sidecar.wiring): the store (opened and migrated before anything listens,
    │   closed last), one HTTP client per peer, the ShopiMind client, the app bridge;
    │   every call to a peer counted in the metrics
    └── nursery
        ├── replica heartbeat (sidecar.heartbeat): registered before anything listens,
        │   marked stopped once the drain is over
        ├── public listener (hypercorn + quart-trio); drains its requests on stop. The
        │   admin API and /metrics are mounted on it unless ADMIN_PORT is set:
        ├── admin listener (ADMIN_HOST:ADMIN_PORT), when configured
        ├── draining: sync workers, the inbound outbox deliverer, operators' syncs (admin
        │   API). On stop they finish the work in hand (not start new), within
        │   DRAIN_TIMEOUT_SECONDS, then are cancelled (an interrupted run is `cancelled`)
        └── background: scheduler (paused while the app fails its health probe), the
            probe (APP_HEALTH_PATH), retention purge (by the replica holding its lease),
            systemd watchdog, signal watcher; they simply end on stop

Several replicas may run this against one database: exclusive work (an installation's
sync, its outbox delivery, the retention purge) is done under a lease of the store
(`sidecar.sync.leases`), and the writes of that work are fenced by it.

Each part starts with `nursery.start`, so by the time READY=1 goes to systemd and
`task_status.started` reports the endpoints, the store is migrated and every listener
is bound.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import trio
from hypercorn.config import Config

from sidecar.admin.syncs import BackgroundSyncs
from sidecar.clock import Clock, system_clock
from sidecar.config import Settings, load_settings
from sidecar.declaration import build_manifest
from sidecar.declaration.model import Declaration
from sidecar.errors import ConfigError, SidecarError
from sidecar.heartbeat import (
    heartbeat_interval_seconds,
    registration,
    run_heartbeat,
)
from sidecar.inbound import (
    INSTALLATION_RATE_BURST,
    INSTALLATION_RATE_PER_SECOND,
    InboundService,
    OutboxDeliverer,
)
from sidecar.lifecycle.deps import LifecycleDeps
from sidecar.lifecycle.dispatcher import LifecycleDispatcher
from sidecar.lifecycle.webhooks import WebhookReceiver
from sidecar.lifecycle.wizard import ConfigWizard
from sidecar.logs import get_logger
from sidecar.maintenance import run_retention
from sidecar.metrics.prometheus import PrometheusMetrics
from sidecar.operations import admin_context, announce_admin
from sidecar.peer_guard import circuit_states
from sidecar.store.records import RetentionPolicy
from sidecar.sync.app_health import AppHealth
from sidecar.sync.requests import DurableSyncRequests
from sidecar.sync.scheduler import SyncQueue, SyncScheduler, WakingSyncRequests
from sidecar.sync.workers import run_workers
from sidecar.systemd import Notifier
from sidecar.web.contexts import PUBLIC_RATE_BURST, PUBLIC_RATE_PER_SECOND, PublicContext
from sidecar.web.front import admin_front, public_front
from sidecar.web.limits import ConnectionLimits, Connections, fit_open_files
from sidecar.web.rate_limit import RateLimiter
from sidecar.web.server import hypercorn_config, serve_app
from sidecar.wiring import Parts, open_parts

__all__ = ["ListenError", "Running", "WebhookSecrets", "run_sidecar"]

_log = get_logger("runtime")


class ListenError(SidecarError):
    """A listener could not bind its address (in use, not local, no permission)."""


def _first(group: BaseExceptionGroup[OSError]) -> str:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf.strerror if isinstance(leaf, OSError) and leaf.strerror else str(leaf)


class WebhookSecrets:
    """The current webhook secrets; replaced whole on SIGHUP, read at every request."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = tuple(secrets)

    def __call__(self) -> Sequence[str]:
        return self._secrets

    def replace(self, secrets: Sequence[str]) -> None:
        """Swap in a new list (e.g. during a rotation)."""
        self._secrets = tuple(secrets)


@dataclass(frozen=True, slots=True)
class Running:
    """A started sidecar: where it listens, and how to stop it gracefully."""

    public_urls: tuple[str, ...]
    stop: Callable[[], None]
    admin_urls: tuple[str, ...] = ()
    """The admin listener's, when ADMIN_PORT is set (else the admin API is on the public one)."""


class _Readiness:
    """GET /ready: True from the moment every part runs until a stop begins."""

    def __init__(self) -> None:
        self.ready = False

    def __call__(self) -> bool:
        return self.ready


async def _watch_signals(
    stop: trio.Event,
    force_stop: Callable[[], None],
    secrets: WebhookSecrets,
    environ: Mapping[str, str],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as received:
        # Started once the handlers are in place: a SIGTERM right after READY=1 drains.
        task_status.started()
        async for signum in received:
            if signum == signal.SIGHUP:
                _reload_secrets(secrets, environ)
            elif stop.is_set():
                _log.warning("second stop signal: stopping without waiting for the drain")
                force_stop()
            else:
                _log.info("stop signal received; draining", signal=signal.Signals(signum).name)
                stop.set()


def _reload_secrets(secrets: WebhookSecrets, environ: Mapping[str, str]) -> None:
    try:
        fresh = load_settings(environ).settings
    except ConfigError as exc:
        _log.error(
            "SIGHUP: configuration invalid; keeping the current secrets",
            problems=[str(p) for p in exc.problems],
        )
        return
    secrets.replace([secret.reveal() for secret in fresh.webhook_secrets])
    _log.info("SIGHUP: webhook secrets reloaded", count=len(fresh.webhook_secrets))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Services:
    """The long-running parts, built from the parts and wired to each other."""

    app: object
    admin_app: object | None
    """The admin listener's app, when ADMIN_PORT is set."""
    secrets: WebhookSecrets
    readiness: _Readiness
    queue: SyncQueue
    scheduler: SyncScheduler
    deliverer: OutboxDeliverer
    limiter: trio.CapacityLimiter
    operator_syncs: BackgroundSyncs
    app_health: AppHealth | None


def _services(parts: Parts, metrics: PrometheusMetrics) -> _Services:
    settings, store, clock = parts.settings, parts.store, parts.clock
    # Fed as workers free up (back-pressure): a queue as deep as the workers are many
    # is enough, and keeps the order (longest overdue first) decided as late as possible.
    queue = SyncQueue(capacity=settings.sync_workers)
    app_health: AppHealth | None = None
    scheduler = SyncScheduler(
        store=store,
        queue=queue,
        interval_minutes=settings.sync_interval_minutes,
        clock=clock,
        paused=lambda: app_health is not None and app_health.paused(),
        # A dead replica's backfill is taken over once its lease expires, not a tick later.
        watch_seconds=settings.lease_ttl_seconds / 3,
    )
    if parts.app_probe is not None:
        app_health = AppHealth(parts.app_probe.healthy, on_recovery=scheduler.wake)
    deps = LifecycleDeps(
        store=store,
        declaration=parts.declaration,
        bridge=parts.bridge,
        shopimind=parts.shopimind,
        # The backfill after an activation starts at once: the scheduler is woken.
        sync_requests=WakingSyncRequests(DurableSyncRequests(store.state, clock), scheduler),
        owner=parts.owner,
        clock=clock,
        lease_ttl_seconds=settings.lease_ttl_seconds,
    )
    deliverer = OutboxDeliverer(
        store=store,
        shopimind=parts.shopimind,
        clock=clock,
        owner=parts.owner,
        lease_ttl_seconds=settings.lease_ttl_seconds,
        metrics=metrics,
    )
    inbound = InboundService(
        store=store,
        declaration=parts.declaration,
        # A direct inbound call holds the app's request open: one quick retry only.
        shopimind=parts.interactive_shopimind,
        wake_deliverer=deliverer.wake,
        allow_installation=RateLimiter(
            burst=INSTALLATION_RATE_BURST, per_second=INSTALLATION_RATE_PER_SECOND
        ).allow,
        tolerance_seconds=settings.signature_tolerance_seconds,
        metrics=metrics,
    )
    secrets = WebhookSecrets([s.reveal() for s in settings.webhook_secrets])
    readiness = _Readiness()
    limiter = trio.CapacityLimiter(settings.sync_workers)
    public = PublicContext(
        store=store,
        receiver=WebhookReceiver(
            store=store,
            declaration=parts.declaration,
            dispatcher=LifecycleDispatcher(deps),
            metrics=metrics,
        ),
        # The config wizard is interactive: ShopiMind waits on it while the merchant
        # watches a spinner.
        wizard=ConfigWizard(bridge=parts.interactive_bridge, declaration=parts.declaration),
        manifest=build_manifest(parts.declaration),
        webhook_secrets=secrets,
        tolerance_seconds=settings.signature_tolerance_seconds,
        limiter=RateLimiter(burst=PUBLIC_RATE_BURST, per_second=PUBLIC_RATE_PER_SECOND),
        inbound=inbound,
        scheduled=settings.sync_interval_minutes > 0,
        ready=readiness,
        app_health=(lambda: None) if app_health is None else lambda: app_health.state,
        circuits=lambda: circuit_states(parts.peers),
        trusted_proxies=settings.trusted_proxies,
        replica_id=settings.replica_id,
    )
    admin, operator_syncs = admin_context(
        parts,
        metrics,
        limiter=limiter,
        app_health=app_health,
        readiness=readiness,
        sync_lag=scheduler.lag,
    )
    # The quart apps are built at their first request (sidecar.web.front).
    body_timeout = settings.body_timeout_seconds
    on_public = settings.admin_port is None
    app = public_front(public, admin if on_public else None, body_timeout_seconds=body_timeout)
    admin_app = None if on_public else admin_front(admin, body_timeout_seconds=body_timeout)
    return _Services(
        app=app,
        admin_app=admin_app,
        secrets=secrets,
        readiness=readiness,
        queue=queue,
        scheduler=scheduler,
        deliverer=deliverer,
        limiter=limiter,
        operator_syncs=operator_syncs,
        app_health=app_health,
    )


def _retention(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        days=settings.retention_days,
        dead_letter_days=settings.dead_letter_retention_days,
        audit_days=settings.audit_retention_days,
    )


async def run_sidecar(
    settings: Settings,
    declaration: Declaration,
    *,
    handle_signals: bool = True,
    environ: Mapping[str, str] | None = None,
    clock: Clock = system_clock,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the sidecar until stopped (a signal, or `Running.stop()`), then drain and close."""
    env = os.environ if environ is None else environ
    notifier = Notifier(env)
    metrics = PrometheusMetrics()
    async with open_parts(settings, declaration, clock=clock, metrics=metrics) as parts:
        services = _services(parts, metrics)
        stop = trio.Event()
        # The listeners outlive the drain: /ready answers 503 while in-flight work ends (a
        # load balancer takes the replica out), and inbound calls are still taken durably.
        drained = trio.Event()
        graceful = settings.drain_timeout_seconds
        config = hypercorn_config(
            host=settings.host, port=settings.port, graceful_timeout_seconds=graceful
        )
        connections = Connections(_connection_limits(settings))
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(_heartbeat, parts, until=drained))
            public_urls = await _listen(
                nursery, services.app, config, drained, connections, "HOST and PORT"
            )
            admin_urls: list[str] = []
            if services.admin_app is not None and settings.admin_port is not None:
                admin_config = hypercorn_config(
                    host=settings.admin_host,
                    port=settings.admin_port,
                    graceful_timeout_seconds=graceful,
                )
                admin_urls = await _listen(
                    nursery,
                    services.admin_app,
                    admin_config,
                    drained,
                    connections,
                    "ADMIN_HOST and ADMIN_PORT",
                )
            announce_admin(settings)
            async with trio.open_nursery() as draining:
                await draining.start(services.deliverer.run, stop)
                await draining.start(
                    functools.partial(
                        run_workers,
                        engine=parts.sync_engine(),
                        queue=services.queue,
                        limiter=services.limiter,
                        count=settings.sync_workers,
                        stop=stop,
                        still_due=services.scheduler.still_due,
                    )
                )
                services.operator_syncs.attach(draining)
                async with trio.open_nursery() as background:
                    await background.start(services.scheduler.run, stop)
                    await background.start(
                        functools.partial(
                            run_retention,
                            parts.store,
                            _retention(settings),
                            owner=parts.owner,
                            lease_ttl_seconds=settings.lease_ttl_seconds,
                            metrics=metrics,
                        )
                    )
                    await background.start(notifier.run_watchdog)
                    if services.app_health is not None:
                        await background.start(services.app_health.run)
                    if handle_signals:
                        await background.start(
                            _watch_signals, stop, nursery.cancel_scope.cancel, services.secrets, env
                        )
                    services.readiness.ready = True
                    _log.info(
                        "sidecar ready",
                        listen=public_urls,
                        admin=admin_urls or None,
                        integration=declaration.slug,
                    )
                    await notifier.ready(f"serving {declaration.slug} on {', '.join(public_urls)}")
                    task_status.started(
                        Running(
                            public_urls=tuple(public_urls),
                            stop=stop.set,
                            admin_urls=tuple(admin_urls),
                        )
                    )
                    await stop.wait()
                    services.readiness.ready = False
                    services.operator_syncs.close()
                    await notifier.stopping()
                    background.cancel_scope.cancel()
                draining.cancel_scope.deadline = trio.current_time() + graceful
            drained.set()
        _log.info("sidecar stopped")


async def _heartbeat(
    parts: Parts,
    *,
    until: trio.Event,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """This replica in the replicas table, from before it listens until its drain is over."""
    ttl = parts.settings.lease_ttl_seconds  # alive for one lease TTL after each beat
    await run_heartbeat(
        parts.store.replicas,
        registration(parts.settings.replica_id, ttl_seconds=ttl),
        interval_seconds=heartbeat_interval_seconds(ttl),
        until=until,
        task_status=task_status,
    )


def _connection_limits(settings: Settings) -> ConnectionLimits:
    return fit_open_files(
        ConnectionLimits(
            max_connections=settings.max_connections,
            max_per_client=settings.max_connections_per_client,
            header_timeout_seconds=settings.header_timeout_seconds,
            body_timeout_seconds=settings.body_timeout_seconds,
            trusted_proxies=settings.trusted_proxies,
        )
    )


async def _listen(
    nursery: trio.Nursery,
    app: object,
    config: Config,
    stop: trio.Event,
    connections: Connections,
    variables: str,
) -> list[str]:
    """Serve `app` in `nursery`; ListenError naming `variables` when it cannot bind."""
    try:
        urls: list[str] = await nursery.start(serve_app, app, config, stop, connections)
    except* OSError as failed:
        raise ListenError(
            f"cannot listen on {config.bind[0]}: {_first(failed)} (set {variables} to a free "
            "address)"
        ) from None
    return urls
