"""The sidecar as one process: one trio nursery running every part (DESIGN.md, "Shape").

    run_sidecar
    ├── the store (opened and migrated before anything listens; closed last)
    ├── HTTP clients: one for the ShopiMind API, one for the vendor's app
    └── nursery
        ├── public listener (hypercorn + quart-trio), drains on shutdown
        └── background: signal watcher (SIGTERM/SIGINT stop, SIGHUP reloads secrets)

Each part starts with `nursery.start`, so when `task_status.started` reports the
endpoints, every listener is bound and the store is ready.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import trio

from sidecar.bridge import AppBridge
from sidecar.clock import Clock, system_clock
from sidecar.config import Settings, load_settings
from sidecar.declaration import build_manifest
from sidecar.declaration.model import Declaration
from sidecar.errors import ConfigError, SidecarError
from sidecar.lifecycle.deps import LifecycleDeps
from sidecar.lifecycle.dispatcher import LifecycleDispatcher
from sidecar.lifecycle.webhooks import WebhookReceiver
from sidecar.lifecycle.wizard import ConfigWizard
from sidecar.logs import get_logger
from sidecar.outbound import RetryPolicy, new_http_client
from sidecar.security.cipher import make_cipher
from sidecar.shopimind.client import ShopimindClient
from sidecar.store import open_store
from sidecar.sync.requests import DurableSyncRequests
from sidecar.web.public import (
    PUBLIC_RATE_BURST,
    PUBLIC_RATE_PER_SECOND,
    PublicContext,
    create_public_app,
)
from sidecar.web.rate_limit import RateLimiter
from sidecar.web.server import hypercorn_config, serve_app

__all__ = ["ListenError", "Running", "WebhookSecrets", "run_sidecar"]

_log = get_logger("runtime")

INTERACTIVE_POLICY = RetryPolicy(max_retries=1, base_seconds=0.2, cap_seconds=0.5)
INTERACTIVE_TIMEOUT_SECONDS = 10.0


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
    key = settings.credentials_key.reveal() if settings.credentials_key else None
    store = await open_store(settings.database_path, cipher=make_cipher(key), clock=clock)
    try:
        async with new_http_client() as api_http, new_http_client() as app_http:
            shopimind = ShopimindClient(
                base_url=settings.shopimind_core_api_base, http=api_http, clock=clock
            )
            bridge = AppBridge(
                base_url=settings.app_base_url,
                secret=settings.app_secret.reveal(),
                http=app_http,
                clock=clock,
            )
            # The config wizard is interactive: ShopiMind waits on it while the merchant
            # watches a spinner, so it gets one quick retry and a short timeout.
            wizard_bridge = AppBridge(
                base_url=settings.app_base_url,
                secret=settings.app_secret.reveal(),
                http=app_http,
                clock=clock,
                policy=INTERACTIVE_POLICY,
                timeout_seconds=INTERACTIVE_TIMEOUT_SECONDS,
            )
            deps = LifecycleDeps(
                store=store,
                declaration=declaration,
                bridge=bridge,
                shopimind=shopimind,
                sync_requests=DurableSyncRequests(store.state, clock),
                clock=clock,
            )
            secrets = WebhookSecrets([s.reveal() for s in settings.webhook_secrets])
            app = create_public_app(
                PublicContext(
                    store=store,
                    receiver=WebhookReceiver(
                        store=store, declaration=declaration, dispatcher=LifecycleDispatcher(deps)
                    ),
                    wizard=ConfigWizard(bridge=wizard_bridge, declaration=declaration),
                    manifest=build_manifest(declaration),
                    webhook_secrets=secrets,
                    tolerance_seconds=settings.signature_tolerance_seconds,
                    limiter=RateLimiter(burst=PUBLIC_RATE_BURST, per_second=PUBLIC_RATE_PER_SECOND),
                )
            )
            stop = trio.Event()
            config = hypercorn_config(
                host=settings.host,
                port=settings.port,
                graceful_timeout_seconds=settings.drain_timeout_seconds,
            )
            async with trio.open_nursery() as nursery:
                try:
                    public_urls: list[str] = await nursery.start(serve_app, app, config, stop)
                except* OSError as failed:
                    reason = _first(failed)
                    raise ListenError(
                        f"cannot listen on {settings.host}:{settings.port}: {reason} "
                        "(set HOST and PORT to a free address)"
                    ) from None
                # Parts that finish their current work once `stop` is set, then return; they
                # get DRAIN_TIMEOUT_SECONDS before being cancelled (each records what it was
                # doing as interrupted). Start each with `await draining.start(run, ..., stop)`.
                async with trio.open_nursery() as draining:
                    # Parts that simply end when the sidecar stops.
                    async with trio.open_nursery() as background:
                        if handle_signals:
                            background.start_soon(
                                _watch_signals,
                                stop,
                                nursery.cancel_scope.cancel,
                                secrets,
                                os.environ if environ is None else environ,
                            )
                        _log.info("sidecar ready", listen=public_urls, integration=declaration.slug)
                        task_status.started(Running(public_urls=tuple(public_urls), stop=stop.set))
                        await stop.wait()
                        background.cancel_scope.cancel()
                    draining.cancel_scope.deadline = (
                        trio.current_time() + settings.drain_timeout_seconds
                    )
            _log.info("sidecar stopped")
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()
