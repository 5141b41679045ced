"""Rows of the store as frozen values, and the small inputs its operations take."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "INBOUND_ENTITY_PREFIX",
    "AuditEntry",
    "Cursor",
    "Fence",
    "Grant",
    "InboundClaim",
    "InboundContext",
    "InboundEvent",
    "InboundStatus",
    "Installation",
    "InstallationChange",
    "InstallationStatus",
    "InstallationUpsert",
    "Lease",
    "OutboxClaim",
    "OutboxEntry",
    "OutboxEvent",
    "OutboxHead",
    "OutboxStatus",
    "PoolStatistics",
    "PurgeCounts",
    "RejectedItem",
    "RejectedItemInput",
    "ResumePoint",
    "RetentionPolicy",
    "RunKind",
    "RunStatus",
    "StateEntry",
    "SyncRun",
    "WebhookLogEntry",
]

InstallationStatus = Literal["inactive", "active", "uninstalled"]
RunKind = Literal["incremental", "full"]
RunStatus = Literal["running", "ok", "partial", "failed", "cancelled", "interrupted", "skipped"]
InboundStatus = Literal["received", "done", "failed"]
OutboxStatus = Literal["queued", "delivered", "failed", "dead"]
INBOUND_ENTITY_PREFIX: Final = "inbound:"
"""Dead-letter rows of inbound events name their entity `inbound:<action>`."""
"""`queued` waits for its first attempt, `failed` waits for a retry after a transient failure,
`delivered` and `dead` (rejected for good, copied to the dead-letter) are final."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Installation:
    """One shop that installed the integration; `installation_id` is opaque (ShopiMind's)."""

    installation_id: str
    shop_domain: str | None
    shop_name: str | None
    external_account_ref: str | None
    external_account_name: str | None
    status: InstallationStatus
    installed_at: str | None
    activated_at: str | None
    deactivated_at: str | None
    uninstalled_at: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallationUpsert:
    """What a lifecycle event knows about an installation; None never overwrites a value."""

    installation_id: str
    status: InstallationStatus
    shop_domain: str | None = None
    shop_name: str | None = None
    installed_at: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallationChange:
    """Everything one lifecycle webhook changes, written in one transaction (all or none):
    applied in the order of the fields, state keys last."""

    installation_id: str
    upsert: InstallationUpsert | None = None
    status: InstallationStatus | None = None
    activated_at: str | None = None
    deactivated_at: str | None = None
    uninstalled_at: str | None = None
    external_account: tuple[str, str | None] | None = None
    """(ref, name): the app's own account for this shop."""
    values: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Sealed like `State.set_secret`."""
    default_secrets: Mapping[str, str] = field(default_factory=dict)
    """Sealed and written only where the key has no value yet (`State.setdefault_secret`)."""
    merge_json: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    """Deep-merged into the stored JSON objects (`State.merge_json`)."""
    delete: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StateEntry:
    """A state key of an installation, without its value (safe to show to an operator)."""

    key: str
    encrypted: bool
    updated_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookLogEntry:
    """One webhook as received, logged before processing with its secrets masked."""

    id: int
    received_at: str
    event: str | None
    installation_id: str | None
    signature_ok: bool
    payload_json: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Cursor:
    """How far one entity (and source) of an installation has been synced."""

    installation_id: str
    entity: str
    source_key: str
    last_synced_at: str | None
    last_status: str | None
    last_error: str | None
    items: int
    consecutive_failures: int
    updated_at: str
    retry_at: str | None = None
    """Not before this time (a `Retry-After` of ShopiMind or the app after a failure)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumePoint:
    """How far an unfinished sync window got: the next page to ask for, and the counts so far."""

    installation_id: str
    entity: str
    source_key: str
    run_kind: RunKind
    window_since: str
    window_until: str
    next_token: str | None
    """The app's token for the next page; None to start the window from its beginning."""
    pages: int = 0
    items: int = 0
    sent: int = 0
    rejected: int = 0
    updated_at: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRun:
    """One sync of an installation: `running` until closed as ok, partial, failed, cancelled,
    interrupted (its process died) or skipped (every cursor waited out a backoff)."""

    id: int
    installation_id: str
    kind: RunKind
    status: RunStatus
    summary_json: str | None
    started_at: str
    finished_at: str | None
    owner: str | None = None
    """Who ran it (a lease owner), so a run orphaned by a dead process can be closed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """Exclusive ownership of a named piece of work until `expires_at`. `epoch` counts the
    holders the name has had: it only ever grows, so it fences out every earlier holder."""

    name: str
    owner: str
    epoch: int
    acquired_at: str
    expires_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Fence:
    """Proof of holding `name` at `epoch`: what every fenced write checks."""

    name: str
    owner: str
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """A lease just acquired: its fence, and whose unreleased lease it took over."""

    fence: Fence
    taken_from: str | None
    """The previous holder whose lease had expired (or was declared dead by `takeover`);
    None when the name was free (never held, or released)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundEvent:
    """One inbound call of the integrator's app, unique per installation and dedup key."""

    id: int
    installation_id: str
    dedup_key: str
    action: str | None
    status: InboundStatus
    error: str | None
    received_at: str
    processed_at: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundClaim:
    """The result of claiming an inbound call: `fresh` when this caller must process it."""

    id: int
    fresh: bool
    status: InboundStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundContext:
    """What an inbound call needs to know of its installation, read in one transaction."""

    installation_id: str
    status: InstallationStatus
    inbound_secret: str | None
    """Decrypted; None before the first activation and after an uninstall."""
    has_access_token: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """An inbound event to queue for delivery, with the dedup key that makes it unique."""

    installation_id: str
    dedup_key: str
    action: str
    target: str
    """The action's target as declared (e.g. `custom_data:loyalty_cards`)."""
    route: str
    """Where it goes, resolved (e.g. `bulk:custom-data-records/12`)."""
    payload_json: str
    idempotency_key: str
    """Sent as `Idempotency-Key` with every attempt, so a retry is never applied twice."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxClaim:
    """The result of queueing: `fresh` when this call queued the event (else a replay)."""

    id: int
    fresh: bool
    status: InboundStatus
    queued: bool
    """Whether the event (fresh or earlier) has an outbox row, i.e. a state to look up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEvent:
    """A queued inbound event and its delivery state; `id` is its inbound event id."""

    id: int
    installation_id: str
    action: str
    target: str
    route: str
    payload_json: str
    idempotency_key: str
    status: OutboxStatus
    attempts: int
    last_error: str | None
    next_attempt_at: str
    created_at: str
    updated_at: str
    delivered_at: str | None

    @property
    def pending(self) -> bool:
        """Still to deliver: `queued` or `failed` (a retry is due at `next_attempt_at`)."""
        return self.status in ("queued", "failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxHead:
    """The oldest pending event of an installation: only what scheduling needs."""

    id: int
    installation_id: str
    next_attempt_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedItemInput:
    """An item ShopiMind refused, and why, on its way to the dead-letter."""

    item: object
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedItem:
    """A dead-lettered item."""

    id: int
    installation_id: str
    run_id: int | None
    entity: str
    source_key: str
    target: str
    item_json: str
    reason: str
    created_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One operator action, as recorded in the audit log (never secrets)."""

    id: int
    at: str
    actor: str
    action: str
    installation_id: str | None
    target: str | None
    detail_json: str
    client_ip: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """Days to keep each kind of row; 0 keeps it forever (PROTOCOL §7.3)."""

    days: int = 90
    dead_letter_days: int = 90
    audit_days: int = 365


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """Rows removed by one retention purge, per table."""

    removed: Mapping[str, int]

    @property
    def total(self) -> int:
        """Rows removed in all tables."""
        return sum(self.removed.values())


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A server database's connection pool, as /metrics shows it."""

    size: int
    in_use: int
    waiting: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaRegistration:
    """What a replica says of itself when it starts (`Replicas.register`)."""

    id: str
    """REPLICA_ID."""
    version: str
    host: str
    pid: int
    alive_seconds: float
    """How long after each heartbeat it counts as alive (a few heartbeat intervals)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Replica:
    """One process of the sidecar on this database, as the replicas table knows it."""

    id: str
    version: str
    host: str
    pid: int
    started_at: str
    heartbeat_at: str
    stopped_at: str | None
    alive: bool
    """Not stopped, and heartbeating: judged by the database's clock."""
    leases_held: int
    """Unexpired leases whose holder is this replica (`<id>/<tag>`)."""
