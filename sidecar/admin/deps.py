"""What the admin service works with, and who calls it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from sidecar.bridge import AppBridge
from sidecar.clock import Clock, system_clock
from sidecar.declaration.model import Declaration
from sidecar.metrics.hooks import NO_METRICS, Metrics
from sidecar.shopimind.client import ShopimindClient
from sidecar.store.interface import Store
from sidecar.sync.engine import RunReport
from sidecar.sync.leases import LEASE_TTL_SECONDS

__all__ = ["RUNTIME_STATUS_KEYS", "AdminDeps", "Caller", "SyncStarter"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: `actor` (`admin-api`, `cli:<user>`) and where from (the API's client IP)."""

    actor: str
    client_ip: str | None = None


class SyncStarter(Protocol):
    """Starts a sync of an installation: the runtime runs it in its nursery and answers
    once it started; the CLI runs it to the end. Raises LeaseBusyError when it syncs
    already, SyncNotPossibleError when it cannot, an AdminError when there is no room."""

    async def __call__(self, installation_id: str, *, full: bool) -> RunReport: ...


RUNTIME_STATUS_KEYS: Final = ("ready", "sync_workers", "app", "circuits", "sync_lag")
"""The overview's keys that only a running `serve` can fill: the CLI, a process of its
own, shows them as null, so both print one shape."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminDeps:
    """What the admin service works with."""

    store: Store
    declaration: Declaration
    manifest: Mapping[str, object]
    bridge: AppBridge
    shopimind: ShopimindClient
    owner: str
    """This process's lease owner id."""
    start_sync: SyncStarter
    clock: Clock = system_clock
    """The store's clock: a lease is held while its expiry is after this clock's now."""
    lease_ttl_seconds: float = LEASE_TTL_SECONDS
    """How long an action's hold of the installation's lease lasts unless renewed."""
    metrics: Metrics = NO_METRICS
    runtime_status: Callable[[], Mapping[str, object]] = field(default=dict)
    """What only the running process knows (workers in use, the app's health), for the
    overview, under the keys of RUNTIME_STATUS_KEYS; nothing for the CLI."""
