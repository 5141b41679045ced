"""The store: everything the sidecar keeps. Callers use the `Store` interface."""

from sidecar.store.interface import Store
from sidecar.store.records import (
    AuditEntry,
    Cursor,
    InboundClaim,
    InboundEvent,
    Installation,
    InstallationChange,
    InstallationUpsert,
    PurgeCounts,
    RejectedItem,
    RejectedItemInput,
    RetentionPolicy,
    StateEntry,
    SyncRun,
    WebhookLogEntry,
)
from sidecar.store.sqlite import open_sqlite_store as open_store

__all__ = [
    "AuditEntry",
    "Cursor",
    "InboundClaim",
    "InboundEvent",
    "Installation",
    "InstallationChange",
    "InstallationUpsert",
    "PurgeCounts",
    "RejectedItem",
    "RejectedItemInput",
    "RetentionPolicy",
    "StateEntry",
    "Store",
    "SyncRun",
    "WebhookLogEntry",
    "open_store",
]
