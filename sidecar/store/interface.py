"""The store's operations as an interface, so an adapter for another database (PostgreSQL)
can replace SQLite without touching a caller. Callers depend on `Store`, never on a class.

Every operation is one transaction. Timestamps are ISO-8601 UTC strings (`sidecar.clock`).

Fencing: the writes that a lease holder makes about its work take `fence=` (the `Fence` of
the lease it holds). With a fence, the write first checks, in its own transaction, that
the lease row `fence.name` still has `fence.owner` at `fence.epoch`; otherwise it raises
`LeaseLostError` and writes nothing. Without one it is unchecked.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol

from sidecar.store.records import (
    AuditEntry,
    Cursor,
    Fence,
    Grant,
    InboundClaim,
    InboundContext,
    InboundEvent,
    InboundStatus,
    Installation,
    InstallationChange,
    InstallationStatus,
    InstallationUpsert,
    Lease,
    OutboxClaim,
    OutboxEntry,
    OutboxEvent,
    OutboxHead,
    OutboxStatus,
    PurgeCounts,
    RejectedItem,
    RejectedItemInput,
    Replica,
    ReplicaRegistration,
    ResumePoint,
    RetentionPolicy,
    RunKind,
    RunStatus,
    StateEntry,
    SyncRun,
    WebhookLogEntry,
)

__all__ = [
    "AuditLog",
    "Cursors",
    "DeadLetter",
    "InboundEvents",
    "Installations",
    "Leases",
    "Outbox",
    "Replicas",
    "Runs",
    "State",
    "Store",
    "WebhookClaims",
    "WebhookLog",
]


class Installations(Protocol):
    """One row per installation."""

    async def upsert(self, upsert: InstallationUpsert) -> None:
        """Create or update; a None field never overwrites a stored value."""
        ...

    async def set_status(
        self,
        installation_id: str,
        status: InstallationStatus,
        *,
        activated_at: str | None = None,
        deactivated_at: str | None = None,
        uninstalled_at: str | None = None,
    ) -> bool:
        """Set the status and the given stamps (others are kept); False when unknown."""
        ...

    async def apply(self, change: InstallationChange) -> None:
        """Write every part of `change` in one transaction: a lifecycle webhook's effect is
        all or none. StoreError when the installation does not exist and `change` does not
        upsert it."""
        ...

    async def set_external_account(
        self,
        installation_id: str,
        ref: str | None,
        name: str | None = None,
        *,
        fence: Fence | None = None,
    ) -> bool:
        """Record the integrator's own account for this shop; False when unknown."""
        ...

    async def get(self, installation_id: str) -> Installation | None:
        """One installation, or None."""
        ...

    async def list(
        self, *, status: InstallationStatus | None = None, limit: int = 100, offset: int = 0
    ) -> list[Installation]:
        """Installations in creation order, optionally of one status."""
        ...

    async def count(self, *, status: InstallationStatus | None = None) -> int:
        """How many installations there are, optionally of one status."""
        ...

    async def search(
        self,
        text: str,
        *,
        status: InstallationStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[Installation]:
        """Installations in creation order whose id is `text`, or whose shop name or domain
        contains it (case-insensitive; "" matches all), optionally of one status."""
        ...


class State(Protocol):
    """Per-installation key/value state; secrets are encrypted, bound to their row."""

    async def get(self, installation_id: str, key: str) -> str | None:
        """The value (decrypted when it is a secret), or None."""
        ...

    async def set(
        self, installation_id: str, key: str, value: str, *, fence: Fence | None = None
    ) -> None:
        """Store a plain value."""
        ...

    async def set_secret(self, installation_id: str, key: str, value: str) -> None:
        """Store a value encrypted at rest."""
        ...

    async def write_many(
        self,
        installation_id: str,
        *,
        values: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        delete: Collection[str] = (),
        fence: Fence | None = None,
    ) -> None:
        """Set plain values, set secrets and delete keys, all in one transaction."""
        ...

    async def setdefault_secret(
        self, installation_id: str, key: str, make: Callable[[], str]
    ) -> str:
        """The stored secret, or `make()` stored atomically and returned (first caller wins)."""
        ...

    async def delete(self, installation_id: str, key: str, *, fence: Fence | None = None) -> bool:
        """Remove a key; False when it was absent."""
        ...

    async def take(
        self, installation_id: str, key: str, *, fence: Fence | None = None
    ) -> str | None:
        """Read and remove a plain value in one transaction (None when absent)."""
        ...

    async def get_json(self, installation_id: str, key: str) -> object | None:
        """A plain value holding JSON, decoded."""
        ...

    async def set_json(
        self, installation_id: str, key: str, value: object, *, fence: Fence | None = None
    ) -> None:
        """Store a JSON-serializable value as plain state."""
        ...

    async def merge_json(
        self,
        installation_id: str,
        key: str,
        patch: Mapping[str, object],
        *,
        fence: Fence | None = None,
    ) -> dict[str, object]:
        """Deep-merge `patch` into the stored JSON object in one transaction; return the result.

        Nested objects merge key by key, so a partial patch never erases what it omits.
        """
        ...

    async def keys(self, installation_id: str) -> list[StateEntry]:
        """The installation's keys and whether each is a secret, never the values."""
        ...

    async def holders(self, key: str) -> list[str]:
        """The installations that have a value under `key`."""
        ...


class WebhookLog(Protocol):
    """Every webhook received, logged before processing (payload already redacted)."""

    async def append(
        self,
        *,
        event: str | None,
        installation_id: str | None,
        signature_ok: bool,
        payload_json: str,
    ) -> int:
        """Append one entry; return its id."""
        ...

    async def list(
        self, *, installation_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[WebhookLogEntry]:
        """Newest first."""
        ...

    async def get(self, entry_id: int) -> WebhookLogEntry | None:
        """One entry, or None."""
        ...


class WebhookClaims(Protocol):
    """Anti-replay claims of lifecycle webhooks, keyed by installation and signature.

    A claim records when and by which replica it was taken, and whether its processing
    completed: a claim left uncompleted (its process died mid-way) is retaken at once when
    its replica is no longer alive, else once stale, so the resend of a webhook nobody
    answered is processed rather than acknowledged unprocessed."""

    async def claim(
        self,
        installation_id: str,
        dedup_key: str,
        *,
        claimed_by: str | None,
        stale_after_seconds: float,
    ) -> bool:
        """Claim atomically for `claimed_by` (a replica id, as in `Replicas`); True
        (process it) when there is no claim, or when the claim is not completed and
        either was taken `stale_after_seconds` or more ago by the store's clock, or its
        claimer is not alive: no replicas row, stopped, past its `alive_until`, or
        (re)started after the claim. Then it is taken anew. Of concurrent callers, at
        most one gets True."""
        ...

    async def complete(self, installation_id: str, dedup_key: str) -> None:
        """Mark a claim's processing completed: it is never retaken."""
        ...

    async def release(self, installation_id: str, dedup_key: str) -> None:
        """Drop a claim so a resend of a failed webhook is processed."""
        ...


class Cursors(Protocol):
    """Sync cursors per (installation, entity, source key), and the resume points of the
    windows in progress. Moving a cursor and dropping its resume point is one transaction."""

    async def get(self, installation_id: str, entity: str, source_key: str = "") -> Cursor | None:
        """One cursor, or None before its first sync."""
        ...

    async def list(self, installation_id: str) -> list[Cursor]:
        """The installation's cursors, by entity and source key."""
        ...

    async def record_success(
        self,
        installation_id: str,
        entity: str,
        source_key: str,
        *,
        synced_at: str,
        items: int,
        fence: Fence | None = None,
    ) -> None:
        """Move the cursor to `synced_at`, reset its failure count, drop its resume point."""
        ...

    async def record_failure(
        self,
        installation_id: str,
        entity: str,
        source_key: str,
        *,
        error: str,
        items: int,
        keep_resume_point: bool = True,
        retry_at: str | None = None,
        fence: Fence | None = None,
    ) -> int:
        """Keep the cursor where it is, note the error; return the consecutive failure count.

        With `keep_resume_point=False` the window's progress is dropped too, so the whole
        window is replayed (e.g. after rejections that must not be skipped). `retry_at`
        (ShopiMind's `Retry-After`) is kept on the cursor until its next success or failure.
        """
        ...

    async def reset(
        self,
        installation_id: str,
        entity: str,
        source_key: str = "",
        *,
        fence: Fence | None = None,
    ) -> bool:
        """Forget the cursor and its resume point in one transaction, so the next run
        backfills that entity; False when there was neither."""
        ...

    async def count_in_error(self) -> int:
        """Cursors whose last step failed, over all installations."""
        ...

    async def resume_point(
        self, installation_id: str, entity: str, source_key: str = ""
    ) -> ResumePoint | None:
        """Where the unfinished window of this cursor stands, or None."""
        ...

    async def save_resume_point(self, point: ResumePoint, *, fence: Fence | None = None) -> None:
        """Record the progress of a window (after an acknowledged page)."""
        ...

    async def resume_points(self, installation_id: str | None = None) -> builtins.list[ResumePoint]:
        """Windows in progress, of one installation or all."""
        ...


class Runs(Protocol):
    """Sync runs: `running`, then closed with a JSON summary."""

    async def start(
        self,
        installation_id: str,
        kind: RunKind,
        *,
        owner: str | None = None,
        fence: Fence | None = None,
    ) -> int:
        """Open a run; return its id. `owner` names the process (lease owner) running it."""
        ...

    async def finish(
        self,
        run_id: int,
        status: RunStatus,
        summary: Mapping[str, object],
        *,
        fence: Fence | None = None,
    ) -> None:
        """Close a run. A summary that cannot be serialized is replaced, never left `running`."""
        ...

    async def get(self, run_id: int) -> SyncRun | None:
        """One run, or None."""
        ...

    async def recent(self, installation_id: str, limit: int = 10, offset: int = 0) -> list[SyncRun]:
        """The installation's runs, newest first."""
        ...

    async def list(
        self, *, status: RunStatus | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[SyncRun]:
        """Every installation's runs, newest first, optionally of one status."""
        ...

    async def latest_statuses(self) -> dict[str, int]:
        """How many installations' last run has each status (for the overview)."""
        ...

    async def latest(self, installation_ids: Sequence[str] | None = None) -> dict[str, SyncRun]:
        """The newest run of each installation that ever ran (of those named, when given:
        a few index steps each, rather than one per installation in the store)."""
        ...

    async def close_running(self, installation_id: str, reason: str, *, fence: Fence) -> int:
        """Close as `interrupted` the installation's `running` runs (left so by an earlier
        holder of its lease, now that `fence` holds it); return how many."""
        ...

    async def close_abandoned(self, reason: str) -> int:
        """Close as `interrupted` every `running` run whose installation's lease
        (`installation:{id}`) is not held now: missing, released, or expired by the
        database clock. Return how many."""
        ...


class InboundEvents(Protocol):
    """Inbound calls, unique per installation and dedup key."""

    async def claim(self, installation_id: str, dedup_key: str, action: str) -> InboundClaim:
        """Claim atomically: `fresh` for the first caller, else the existing row's status."""
        ...

    async def context(self, installation_id: str) -> InboundContext | None:
        """The installation's status, inbound secret and whether it has an access token, in
        one read (an inbound call needs all three); None when it does not exist."""
        ...

    async def retake(self, event_id: int) -> bool:
        """Take a `failed` event back to `received` so an identical retry runs it again;
        True for the one caller that did (its status was still `failed`)."""
        ...

    async def finish(self, event_id: int, status: InboundStatus, error: str | None = None) -> None:
        """Record the outcome of processing."""
        ...

    async def get(self, installation_id: str, dedup_key: str) -> InboundEvent | None:
        """One event, or None."""
        ...

    async def list(
        self, *, installation_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[InboundEvent]:
        """Newest first, of one installation or all."""
        ...


class Outbox(Protocol):
    """Queued inbound events on their way to ShopiMind, and their delivery state.

    Every step is one transaction, and a step after the first applies only while the event
    is still pending (`queued` or `failed`): an outcome recorded twice changes nothing.
    """

    async def enqueue(self, entry: OutboxEntry) -> OutboxClaim:
        """Claim the entry's dedup key and queue it, in one transaction. A key already
        claimed is a replay (`fresh` False), unless its earlier call failed."""
        ...

    async def get(self, event_id: int) -> OutboxEvent | None:
        """One queued event, or None."""
        ...

    async def heads(self, *, limit: int = 1000) -> list[OutboxHead]:
        """The oldest pending event of each installation (what may be delivered next)."""
        ...

    async def pending(self, installation_id: str, *, limit: int = 100) -> list[OutboxEvent]:
        """The installation's pending events, oldest first (the order they are delivered in)."""
        ...

    async def mark_delivered(
        self,
        event_id: int,
        *,
        note: str | None = None,
        rejected: Sequence[RejectedItemInput] = (),
        fence: Fence | None = None,
    ) -> bool:
        """ShopiMind took it; items it refused go to the dead-letter in the same transaction.
        False when the event was no longer pending."""
        ...

    async def mark_failed(
        self, event_id: int, *, error: str, retry_at: str, fence: Fence | None = None
    ) -> bool:
        """A transient failure: keep it pending, retry at `retry_at`. False if not pending."""
        ...

    async def mark_dead(
        self,
        event_id: int,
        *,
        error: str,
        rejected: Sequence[RejectedItemInput],
        fence: Fence | None = None,
    ) -> bool:
        """Rejected for good: status `dead`, `rejected` copied to the dead-letter in the same
        transaction. False when the event was no longer pending."""
        ...

    async def counts(self, installation_id: str | None = None) -> dict[OutboxStatus, int]:
        """Events per status, of one installation or all."""
        ...

    async def list(
        self,
        *,
        installation_id: str | None = None,
        status: OutboxStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[OutboxEvent]:
        """Newest first, of one installation or all, optionally of one status."""
        ...

    async def oldest_pending_at(self) -> str | None:
        """When the oldest event still to deliver was queued (None when none is pending)."""
        ...

    async def pending_count(self) -> int:
        """Events still to deliver (queued or failed), over all installations."""
        ...


class DeadLetter(Protocol):
    """Items ShopiMind rejected, kept for inspection and replay."""

    async def add(
        self,
        installation_id: str,
        *,
        run_id: int | None,
        entity: str,
        source_key: str,
        target: str,
        items: Sequence[RejectedItemInput],
        fence: Fence | None = None,
    ) -> int:
        """Store rejected items; return how many were stored."""
        ...

    async def list(
        self, *, installation_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[RejectedItem]:
        """Newest first."""
        ...

    async def get(self, item_id: int) -> RejectedItem | None:
        """One item, or None."""
        ...

    async def delete(self, ids: Sequence[int], *, installation_id: str | None = None) -> int:
        """Remove items by id (only the installation's, when given); return how many."""
        ...

    async def clear(self, installation_id: str) -> int:
        """Remove every item of the installation; return how many."""
        ...

    async def count(self, installation_id: str | None = None) -> int:
        """Items in the dead-letter."""
        ...


class AuditLog(Protocol):
    """Operator actions."""

    async def record(
        self,
        *,
        actor: str,
        action: str,
        installation_id: str | None = None,
        target: str | None = None,
        detail: Mapping[str, object] | None = None,
        client_ip: str | None = None,
    ) -> int:
        """Append one entry (its detail redacted); return its id."""
        ...

    async def list(
        self,
        *,
        action: str | None = None,
        installation_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Newest first, optionally of one action and/or one installation."""
        ...


class Leases(Protocol):
    """Named, expiring, exclusive ownership shared by every process on the database.

    Expiry is decided by the database's clock ("database now": PostgreSQL's
    `clock_timestamp()` on the system clock, else the store's `Clock`), never a host's.
    Rows are kept on release, so the epoch of a name only ever grows.
    """

    async def acquire(
        self,
        name: str,
        owner: str,
        *,
        ttl_seconds: float,
        takeover: Callable[[str], bool] | None = None,
    ) -> Grant | None:
        """Take `name` for `ttl_seconds`, in one transaction, when there is no row, when it
        is released or expired, or when `takeover(current_owner)` is true: the new epoch is
        the old one + 1 (1 for a new row). Already held by `owner` and unexpired: the same
        epoch, its expiry extended. None when someone else holds it."""
        ...

    async def renew(self, fence: Fence, *, ttl_seconds: float) -> bool:
        """Extend the lease to database now + `ttl_seconds` iff its row still has
        `fence.owner` at `fence.epoch` (even if it expired meanwhile and nobody took it:
        then nobody else worked). False when it was lost."""
        ...

    async def release(self, fence: Fence) -> None:
        """Give the lease up iff it is still ours: it expires now (owner and epoch stay)."""
        ...

    async def get(self, name: str) -> Lease | None:
        """The current or last holder, expired or not, or None when never held."""
        ...

    async def held(self) -> list[Lease]:
        """Every lease unexpired by the database clock, by name."""
        ...


class Store(Protocol):
    """Everything the sidecar keeps, behind one object."""

    @property
    def installations(self) -> Installations: ...
    @property
    def state(self) -> State: ...
    @property
    def webhook_log(self) -> WebhookLog: ...
    @property
    def webhook_claims(self) -> WebhookClaims: ...
    @property
    def cursors(self) -> Cursors: ...
    @property
    def runs(self) -> Runs: ...
    @property
    def inbound_events(self) -> InboundEvents: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def dead_letter(self) -> DeadLetter: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def leases(self) -> Leases: ...
    @property
    def replicas(self) -> Replicas: ...

    async def ping(self) -> None:
        """Raise StoreError when the store cannot answer a query."""
        ...

    async def purge_expired(self, policy: RetentionPolicy) -> PurgeCounts:
        """Remove rows older than the policy allows, in one transaction; return the counts."""
        ...

    async def schema_version(self) -> int:
        """The migration version of the store."""
        ...

    async def aclose(self) -> None:
        """Finish queued operations and close; later calls raise StoreClosedError."""
        ...


class Replicas(Protocol):
    """The processes sharing the database, with their heartbeats (judged, like leases, by
    the database's clock)."""

    async def register(self, replica: ReplicaRegistration) -> None:
        """Record `replica` as started and alive now (again, when its id is known)."""
        ...

    async def heartbeat(self, replica_id: str) -> bool:
        """Say it is alive; False when the id is not registered (register it again)."""
        ...

    async def stopped(self, replica_id: str) -> None:
        """Record a clean stop: no longer alive, kept until the retention purge."""
        ...

    async def list(self) -> builtins.list[Replica]:
        """Every known replica, the alive ones first, then by id."""
        ...
