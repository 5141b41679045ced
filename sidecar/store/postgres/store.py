"""`PostgresStore`: the `Store` interface on a PostgreSQL schema."""

from __future__ import annotations

import trio

from sidecar.clock import Clock, format_timestamp, system_clock
from sidecar.logs import get_logger
from sidecar.postgres_url import DEFAULT_DATABASE_SCHEMA, redact_url
from sidecar.security.cipher import SecretCipher
from sidecar.store.postgres.audit import PostgresAuditLog
from sidecar.store.postgres.cursors import PostgresCursors
from sidecar.store.postgres.database import DEFAULT_POOL_SIZE, Database, open_database
from sidecar.store.postgres.dead_letter import PostgresDeadLetter
from sidecar.store.postgres.inbound import PostgresInboundEvents
from sidecar.store.postgres.installations import PostgresInstallations
from sidecar.store.postgres.leases import PostgresLeases
from sidecar.store.postgres.migrations import applied_version, migrate
from sidecar.store.postgres.outbox import PostgresOutbox
from sidecar.store.postgres.replicas import PostgresReplicas
from sidecar.store.postgres.retention import purge_expired
from sidecar.store.postgres.runs import PostgresRuns
from sidecar.store.postgres.state import PostgresState
from sidecar.store.postgres.webhooks import PostgresWebhookClaims, PostgresWebhookLog
from sidecar.store.records import PoolStatistics, PurgeCounts, RetentionPolicy

__all__ = ["PostgresStore", "open_postgres_store"]

_log = get_logger("store")


class PostgresStore:
    """Every repository of the sidecar on one PostgreSQL schema."""

    def __init__(
        self,
        db: Database,
        *,
        cipher: SecretCipher,
        clock: Clock,
        database_clock: bool | None = None,
    ) -> None:
        self.db = db
        self._clock = clock
        self._state = PostgresState(db, cipher, clock)
        self._installations = PostgresInstallations(db, clock, self._state)
        self._webhook_log = PostgresWebhookLog(db, clock)
        self._cursors = PostgresCursors(db, clock)
        # Expiries by the server's clock, which every host shares; a test's own clock
        # (anything but the system clock) keeps the leases on its time instead, unless
        # `database_clock` says otherwise.
        if database_clock is None:
            database_clock = clock is system_clock
        self._leases = PostgresLeases(db, clock, database_clock=database_clock)
        self._webhook_claims = PostgresWebhookClaims(db, self._leases.clock)
        self._runs = PostgresRuns(db, clock, self._leases.clock)
        self._inbound_events = PostgresInboundEvents(db, cipher, clock)
        self._outbox = PostgresOutbox(db, clock)
        self._dead_letter = PostgresDeadLetter(db, clock)
        self._audit = PostgresAuditLog(db, clock)
        self._replicas = PostgresReplicas(db, clock, database_clock=database_clock)

    @property
    def installations(self) -> PostgresInstallations:
        return self._installations

    @property
    def state(self) -> PostgresState:
        return self._state

    @property
    def webhook_log(self) -> PostgresWebhookLog:
        return self._webhook_log

    @property
    def webhook_claims(self) -> PostgresWebhookClaims:
        return self._webhook_claims

    @property
    def cursors(self) -> PostgresCursors:
        return self._cursors

    @property
    def runs(self) -> PostgresRuns:
        return self._runs

    @property
    def inbound_events(self) -> PostgresInboundEvents:
        return self._inbound_events

    @property
    def outbox(self) -> PostgresOutbox:
        return self._outbox

    @property
    def dead_letter(self) -> PostgresDeadLetter:
        return self._dead_letter

    @property
    def audit(self) -> PostgresAuditLog:
        return self._audit

    @property
    def leases(self) -> PostgresLeases:
        return self._leases

    @property
    def replicas(self) -> PostgresReplicas:
        return self._replicas

    def pool_statistics(self) -> PoolStatistics:
        """Connections in the pool, in use, and operations waiting (for /metrics)."""
        return self.db.statistics()

    async def ping(self) -> None:
        await self.db.read(lambda c: c.execute("SELECT 1").fetchone())

    async def server_version(self) -> int:
        """The server's version number, e.g. 150004 for 15.4."""
        return await self.db.read(
            lambda c: int(c.execute("SHOW server_version_num").fetchone()["server_version_num"])  # type: ignore[index]
        )

    async def purge_expired(self, policy: RetentionPolicy) -> PurgeCounts:
        now = self._clock()  # read on the event loop's side, never in a worker thread
        counts = await self.db.write(lambda c: purge_expired(c, now, policy))
        if counts.total:
            _log.info("retention purge", removed=dict(counts.removed))
        return counts

    async def schema_version(self) -> int:
        return await self.db.read(applied_version)

    async def aclose(self) -> None:
        await self.db.aclose()


async def open_postgres_store(
    url: str,
    *,
    cipher: SecretCipher,
    schema: str = DEFAULT_DATABASE_SCHEMA,
    clock: Clock = system_clock,
    pool_size: int = DEFAULT_POOL_SIZE,
    connect_seconds: float = 10.0,
    database_clock: bool | None = None,
) -> PostgresStore:
    """Open the PostgreSQL store at `url` in `schema` (created when absent) and bring its
    schema up to date, under an advisory lock. Leases run on the server's clock when
    `database_clock` (by default: when `clock` is the system clock)."""
    db = await open_database(url, schema=schema, pool_size=pool_size, wait_seconds=connect_seconds)
    try:
        applied_at = format_timestamp(clock())
        applied = await db.run(lambda c: migrate(c, schema, applied_at))
    except BaseException:
        with trio.CancelScope(shield=True):
            await db.aclose()
        raise
    if applied:
        _log.info("database migrated", database=redact_url(url), schema=schema, applied=applied)
    return PostgresStore(db, cipher=cipher, clock=clock, database_clock=database_clock)
