"""What the lifecycle rules work with: the store, the declaration and the two peers."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.bridge import AppBridge
from sidecar.clock import Clock, system_clock
from sidecar.declaration.model import Declaration
from sidecar.shopimind.client import ShopimindClient
from sidecar.store.interface import Store
from sidecar.sync.leases import LEASE_TTL_SECONDS
from sidecar.sync.requests import SyncRequests

__all__ = ["LifecycleDeps"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleDeps:
    """Everything a lifecycle rule may touch, passed in explicitly."""

    store: Store
    declaration: Declaration
    bridge: AppBridge
    shopimind: ShopimindClient
    sync_requests: SyncRequests
    owner: str
    """This process's replica id (REPLICA_ID, its row in the replicas table): the owner
    of its leases and the claimer of its webhook claims."""
    clock: Clock = system_clock
    lease_ttl_seconds: float = LEASE_TTL_SECONDS
    """How long a provisioning's hold of the installation's lease lasts unless renewed."""
