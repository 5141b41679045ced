"""The sidecar as one process: one trio nursery running every part (DESIGN.md, "Shape").

    run_sidecar
    ├── parts (sidecar.wiring): the store (opened and migrated before anything listens,
    │   closed last), one HTTP client per peer, the ShopiMind client, the app bridge
    └── nursery
        ├── public listener (hypercorn + quart-trio); drains its requests on stop
        ├── draining: sync workers, the inbound outbox deliverer. On stop they finish the
        │   work in hand (not start new), within DRAIN_TIMEOUT_SECONDS, then are cancelled
        │   (an interrupted sync run is recorded as cancelled)
        └── background: scheduler, retention purge, systemd watchdog, signal watcher;
            they simply end on stop

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

from sidecar.clock import Clock, system_clock
from sidecar.config import Settings, load_settings
from sidecar.declaration import build_manifest
from sidecar.declaration.model import Declaration
from sidecar.errors import ConfigError, SidecarError
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
from sidecar.store.records import RetentionPolicy
from sidecar.sync.requests import DurableSyncRequests
from sidecar.sync.scheduler import SyncQueue, SyncScheduler, WakingSyncRequests
from sidecar.sync.workers import run_workers
from sidecar.systemd import Notifier
from sidecar.web.public import (
    PUBLIC_RATE_BURST,
    PUBLIC_RATE_PER_SECOND,
    PublicContext,
    create_public_app,
)
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
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as received:
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
    secrets: WebhookSecrets
    readiness: _Readiness
    queue: SyncQueue
    scheduler: SyncScheduler
    deliverer: OutboxDeliverer
    limiter: trio.CapacityLimiter


def _services(parts: Parts) -> _Services:
    settings, store, clock = parts.settings, parts.store, parts.clock
    queue = SyncQueue(capacity=max(64, settings.sync_workers * 4))
    scheduler = SyncScheduler(
        store=store, queue=queue, interval_minutes=settings.sync_interval_minutes, clock=clock
    )
    deps = LifecycleDeps(
        store=store,
        declaration=parts.declaration,
        bridge=parts.bridge,
        shopimind=parts.shopimind,
        # The backfill after an activation starts at once: the scheduler is woken.
        sync_requests=WakingSyncRequests(DurableSyncRequests(store.state, clock), scheduler),
        owner=parts.owner,
        clock=clock,
    )
    deliverer = OutboxDeliverer(
        store=store, shopimind=parts.shopimind, clock=clock, owner=parts.owner
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
    )
    secrets = WebhookSecrets([s.reveal() for s in settings.webhook_secrets])
    readiness = _Readiness()
    app = create_public_app(
        PublicContext(
            store=store,
            receiver=WebhookReceiver(
                store=store, declaration=parts.declaration, dispatcher=LifecycleDispatcher(deps)
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
        )
    )
    return _Services(
        app=app,
        secrets=secrets,
        readiness=readiness,
        queue=queue,
        scheduler=scheduler,
        deliverer=deliverer,
        limiter=trio.CapacityLimiter(settings.sync_workers),
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
    async with open_parts(settings, declaration, clock=clock) as parts:
        services = _services(parts)
        stop = trio.Event()
        config = hypercorn_config(
            host=settings.host,
            port=settings.port,
            graceful_timeout_seconds=settings.drain_timeout_seconds,
        )
        async with trio.open_nursery() as nursery:
            try:
                public_urls: list[str] = await nursery.start(serve_app, services.app, config, stop)
            except* OSError as failed:
                raise ListenError(
                    f"cannot listen on {settings.host}:{settings.port}: {_first(failed)} "
                    "(set HOST and PORT to a free address)"
                ) from None
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
                    )
                )
                async with trio.open_nursery() as background:
                    await background.start(services.scheduler.run, stop)
                    await background.start(run_retention, parts.store, _retention(settings))
                    await background.start(notifier.run_watchdog)
                    if handle_signals:
                        background.start_soon(
                            _watch_signals, stop, nursery.cancel_scope.cancel, services.secrets, env
                        )
                    services.readiness.ready = True
                    _log.info("sidecar ready", listen=public_urls, integration=declaration.slug)
                    await notifier.ready(f"serving {declaration.slug} on {', '.join(public_urls)}")
                    task_status.started(Running(public_urls=tuple(public_urls), stop=stop.set))
                    await stop.wait()
                    services.readiness.ready = False
                    await notifier.stopping()
                    background.cancel_scope.cancel()
                draining.cancel_scope.deadline = (
                    trio.current_time() + settings.drain_timeout_seconds
                )
        _log.info("sidecar stopped")
