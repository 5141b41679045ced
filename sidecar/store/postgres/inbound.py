"""Inbound calls of the integrator's app, claimed atomically by (installation, dedup key)."""

from __future__ import annotations

import builtins

from sidecar.clock import Clock, format_timestamp
from sidecar.security.cipher import SecretCipher, associated_data
from sidecar.state_keys import ACCESS_TOKEN, INBOUND_SECRET
from sidecar.store.postgres._rows import page, record
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.records import InboundClaim, InboundContext, InboundEvent, InboundStatus

__all__ = ["PostgresInboundEvents"]


class PostgresInboundEvents:
    """`InboundEvents` on PostgreSQL."""

    def __init__(self, db: Database, cipher: SecretCipher, clock: Clock) -> None:
        self._db = db
        self._cipher = cipher
        self._clock = clock

    async def context(self, installation_id: str) -> InboundContext | None:
        # Read at every call, never kept in memory as the SQLite store does: other hosts
        # write to this database, and nothing as cheap as SQLite's PRAGMA data_version
        # tells this process so (asking a version row costs the round trip this read costs).
        def read(connection: Connection) -> InboundContext | None:
            # One statement: the installation, and its two state rows when they exist.
            rows = connection.execute(
                "SELECT i.status, s.key, s.value, s.encrypted FROM installations AS i "
                "LEFT JOIN installation_state AS s ON s.installation_id = i.installation_id "
                "AND s.key IN (%s, %s) WHERE i.installation_id = %s",
                (INBOUND_SECRET, ACCESS_TOKEN, installation_id),
            ).fetchall()
            if not rows:
                return None
            secret: str | None = None
            has_token = False
            for row in rows:
                if row["key"] == ACCESS_TOKEN:
                    has_token = True  # present is enough: never decrypted here
                elif row["key"] == INBOUND_SECRET and row["encrypted"]:
                    aad = associated_data(installation_id, INBOUND_SECRET)
                    secret = self._cipher.decrypt(str(row["value"]), aad)
                elif row["key"] == INBOUND_SECRET:
                    secret = str(row["value"])
            return InboundContext(
                installation_id=installation_id,
                status=rows[0]["status"],
                inbound_secret=secret,
                has_access_token=has_token,
            )

        return await self._db.read(read)

    async def claim(self, installation_id: str, dedup_key: str, action: str) -> InboundClaim:
        now = format_timestamp(self._clock())

        def write(connection: Connection) -> InboundClaim:
            # ON CONFLICT waits for a concurrent claimer's commit, so the row read back
            # afterwards is the one that won the claim.
            inserted = connection.execute(
                "INSERT INTO inbound_events (installation_id, dedup_key, action, status, "
                "received_at) VALUES (%s, %s, %s, 'received', %s) "
                "ON CONFLICT (installation_id, dedup_key) DO NOTHING RETURNING id, status",
                (installation_id, dedup_key, action, now),
            ).fetchone()
            if inserted is not None:
                return InboundClaim(id=int(inserted["id"]), fresh=True, status="received")
            row = connection.execute(
                "SELECT id, status FROM inbound_events "
                "WHERE installation_id = %s AND dedup_key = %s",
                (installation_id, dedup_key),
            ).fetchone()
            if row is None:  # pragma: no cover - the conflicting row cannot vanish (FK cascade)
                raise LookupError("the claimed inbound event vanished")
            return InboundClaim(id=int(row["id"]), fresh=False, status=row["status"])

        return await self._db.write(write)

    async def retake(self, event_id: int) -> bool:
        # Guarded by the status: of several identical retries, exactly one takes it over.
        changed = await self._db.write(
            lambda c: (
                c.execute(
                    "UPDATE inbound_events SET status = 'received', error = NULL, "
                    "processed_at = NULL WHERE id = %s AND status = 'failed'",
                    (event_id,),
                ).rowcount
            )
        )
        return changed == 1

    async def finish(self, event_id: int, status: InboundStatus, error: str | None = None) -> None:
        now = format_timestamp(self._clock())
        await self._db.write(
            lambda c: c.execute(
                "UPDATE inbound_events SET status = %s, error = %s, processed_at = %s "
                "WHERE id = %s",
                (status, error, now, event_id),
            )
        )

    async def get(self, installation_id: str, dedup_key: str) -> InboundEvent | None:
        def read(connection: Connection) -> InboundEvent | None:
            row = connection.execute(
                "SELECT * FROM inbound_events WHERE installation_id = %s AND dedup_key = %s",
                (installation_id, dedup_key),
            ).fetchone()
            return None if row is None else record(InboundEvent, row)

        return await self._db.read(read)

    async def list(
        self, *, installation_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[InboundEvent]:
        limit, offset = page(limit, offset)

        def read(connection: Connection) -> builtins.list[InboundEvent]:
            # Only the condition asked for: a prepared `IS NULL OR …` hides the index.
            where = "" if installation_id is None else "WHERE installation_id = %(iid)s "
            rows = connection.execute(
                f"SELECT * FROM inbound_events {where}"
                "ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
                {"iid": installation_id, "limit": limit, "offset": offset},
            )
            return [record(InboundEvent, row) for row in rows]

        return await self._db.read(read)
