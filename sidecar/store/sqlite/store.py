"""`SqliteStore`: the `Store` interface on one SQLite file."""

from __future__ import annotations

from pathlib import Path

import trio

from sidecar.clock import Clock, format_timestamp, system_clock
from sidecar.logs import get_logger
from sidecar.security.cipher import SecretCipher
from sidecar.store.records import PurgeCounts, RetentionPolicy
from sidecar.store.sqlite.audit import SqliteAuditLog
from sidecar.store.sqlite.cursors import SqliteCursors
from sidecar.store.sqlite.database import Database, open_database
from sidecar.store.sqlite.dead_letter import SqliteDeadLetter
from sidecar.store.sqlite.inbound import SqliteInboundEvents
from sidecar.store.sqlite.installations import SqliteInstallations
from sidecar.store.sqlite.leases import SqliteLeases
from sidecar.store.sqlite.migrations import migrate
from sidecar.store.sqlite.outbox import SqliteOutbox
from sidecar.store.sqlite.replicas import SqliteReplicas
from sidecar.store.sqlite.retention import purge_expired
from sidecar.store.sqlite.runs import SqliteRuns
from sidecar.store.sqlite.state import SqliteState
from sidecar.store.sqlite.webhooks import SqliteWebhookClaims, SqliteWebhookLog

__all__ = ["SqliteStore", "open_sqlite_store"]

_log = get_logger("store")


class SqliteStore:
    """Every repository of the sidecar on one SQLite database."""

    def __init__(self, db: Database, *, cipher: SecretCipher, clock: Clock) -> None:
        self.db = db
        self._clock = clock
        self._state = SqliteState(db, cipher, clock)
        self._installations = SqliteInstallations(db, clock, self._state)
        self._webhook_log = SqliteWebhookLog(db, clock)
        self._webhook_claims = SqliteWebhookClaims(db, clock)
        self._cursors = SqliteCursors(db, clock)
        self._runs = SqliteRuns(db, clock)
        self._inbound_events = SqliteInboundEvents(db, cipher, clock)
        self._outbox = SqliteOutbox(db, clock)
        self._dead_letter = SqliteDeadLetter(db, clock)
        self._audit = SqliteAuditLog(db, clock)
        self._leases = SqliteLeases(db, clock)
        self._replicas = SqliteReplicas(db, clock)

    @property
    def path(self) -> Path:
        """The database file."""
        return self.db.path

    @property
    def installations(self) -> SqliteInstallations:
        return self._installations

    @property
    def state(self) -> SqliteState:
        return self._state

    @property
    def webhook_log(self) -> SqliteWebhookLog:
        return self._webhook_log

    @property
    def webhook_claims(self) -> SqliteWebhookClaims:
        return self._webhook_claims

    @property
    def cursors(self) -> SqliteCursors:
        return self._cursors

    @property
    def runs(self) -> SqliteRuns:
        return self._runs

    @property
    def inbound_events(self) -> SqliteInboundEvents:
        return self._inbound_events

    @property
    def outbox(self) -> SqliteOutbox:
        return self._outbox

    @property
    def dead_letter(self) -> SqliteDeadLetter:
        return self._dead_letter

    @property
    def audit(self) -> SqliteAuditLog:
        return self._audit

    @property
    def leases(self) -> SqliteLeases:
        return self._leases

    @property
    def replicas(self) -> SqliteReplicas:
        return self._replicas

    async def ping(self) -> None:
        await self.db.read(lambda c: c.execute("SELECT 1").fetchone())

    async def purge_expired(self, policy: RetentionPolicy) -> PurgeCounts:
        now = self._clock()  # read on the event loop's side, never in the store's thread
        counts = await self.db.write(lambda c: purge_expired(c, now, policy))
        if counts.total:
            _log.info("retention purge", removed=dict(counts.removed))
        return counts

    async def schema_version(self) -> int:
        return await self.db.read(lambda c: int(c.execute("PRAGMA user_version").fetchone()[0]))

    async def aclose(self) -> None:
        await self.db.aclose()


async def open_sqlite_store(
    path: Path, *, cipher: SecretCipher, clock: Clock = system_clock
) -> SqliteStore:
    """Open the SQLite store at `path` (created when absent) and bring its schema up to date."""
    db = await open_database(path)
    try:
        applied_at = format_timestamp(clock())
        applied = await db.write(lambda c: migrate(c, applied_at))
    except BaseException:
        with trio.CancelScope(shield=True):
            await db.aclose()
        raise
    if applied:
        _log.info("database migrated", path=str(path), applied=applied)
    return SqliteStore(db, cipher=cipher, clock=clock)
