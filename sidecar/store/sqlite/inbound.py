"""Inbound calls of the integrator's app, claimed atomically by (installation, dedup key)."""

from __future__ import annotations

import builtins
import sqlite3

from sidecar.clock import Clock, format_timestamp
from sidecar.security.cipher import SecretCipher, associated_data
from sidecar.state_keys import ACCESS_TOKEN, INBOUND_SECRET
from sidecar.store.records import InboundClaim, InboundContext, InboundEvent, InboundStatus
from sidecar.store.sqlite._rows import page, record
from sidecar.store.sqlite.database import Database

__all__ = ["CONTEXT_CACHE_ENTRIES", "SqliteInboundEvents"]

CONTEXT_CACHE_ENTRIES = 10_000
"""Installations whose inbound context is kept in memory (the oldest make way)."""


class SqliteInboundEvents:
    """`InboundEvents` on SQLite."""

    def __init__(self, db: Database, cipher: SecretCipher, clock: Clock) -> None:
        self._db = db
        self._cipher = cipher
        self._clock = clock
        # The context of each installation calling in, kept while nothing about
        # installations changed (`Database.generation`): an inbound call then costs one
        # trip to the store thread, its write, instead of two. Unknown ids are kept too,
        # so a repeated probe answers as fast whether the id exists or not.
        self._contexts: dict[str, InboundContext | None] = {}
        self._contexts_generation = db.generation

    async def context(self, installation_id: str) -> InboundContext | None:
        generation = self._db.generation
        if generation != self._contexts_generation:
            self._contexts.clear()
            self._contexts_generation = generation
        elif installation_id in self._contexts:
            return self._contexts[installation_id]
        context = await self._read_context(installation_id)
        # Kept only if nothing changed while it was read (else the next call reads again).
        if self._db.generation == generation == self._contexts_generation:
            if len(self._contexts) >= CONTEXT_CACHE_ENTRIES:
                del self._contexts[next(iter(self._contexts))]  # the oldest
            self._contexts[installation_id] = context
        return context

    async def _read_context(self, installation_id: str) -> InboundContext | None:
        def read(connection: sqlite3.Connection) -> InboundContext | None:
            # One statement: the installation, and its two state rows when they exist.
            rows = connection.execute(
                "SELECT i.status, s.key, s.value, s.encrypted FROM installations AS i "
                "LEFT JOIN installation_state AS s ON s.installation_id = i.installation_id "
                "AND s.key IN (?, ?) WHERE i.installation_id = ?",
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

        def write(connection: sqlite3.Connection) -> InboundClaim:
            # The INSERT and the SELECT share one transaction: no other writer can slip
            # between them, so the row read back is the one that won the claim.
            inserted = connection.execute(
                "INSERT INTO inbound_events (installation_id, dedup_key, action, status, "
                "received_at) VALUES (?, ?, ?, 'received', ?) "
                "ON CONFLICT (installation_id, dedup_key) DO NOTHING",
                (installation_id, dedup_key, action, now),
            ).rowcount
            row = connection.execute(
                "SELECT id, status FROM inbound_events WHERE installation_id = ? AND dedup_key = ?",
                (installation_id, dedup_key),
            ).fetchone()
            return InboundClaim(id=int(row["id"]), fresh=inserted == 1, status=row["status"])

        return await self._db.write(write)

    async def retake(self, event_id: int) -> bool:
        # Guarded by the status: of several identical retries, exactly one takes it over.
        changed = await self._db.write(
            lambda c: (
                c.execute(
                    "UPDATE inbound_events SET status = 'received', error = NULL, "
                    "processed_at = NULL WHERE id = ? AND status = 'failed'",
                    (event_id,),
                ).rowcount
            )
        )
        return changed == 1

    async def finish(self, event_id: int, status: InboundStatus, error: str | None = None) -> None:
        now = format_timestamp(self._clock())
        await self._db.write(
            lambda c: c.execute(
                "UPDATE inbound_events SET status = ?, error = ?, processed_at = ? WHERE id = ?",
                (status, error, now, event_id),
            )
        )

    async def get(self, installation_id: str, dedup_key: str) -> InboundEvent | None:
        def read(connection: sqlite3.Connection) -> InboundEvent | None:
            row = connection.execute(
                "SELECT * FROM inbound_events WHERE installation_id = ? AND dedup_key = ?",
                (installation_id, dedup_key),
            ).fetchone()
            return None if row is None else record(InboundEvent, row)

        return await self._db.read(read)

    async def list(
        self, *, installation_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[InboundEvent]:
        limit, offset = page(limit, offset)

        def read(connection: sqlite3.Connection) -> builtins.list[InboundEvent]:
            # Two statements: `:iid IS NULL OR …` would hide the installation's index.
            where = "" if installation_id is None else "WHERE installation_id = :iid "
            rows = connection.execute(
                f"SELECT * FROM inbound_events {where}ORDER BY id DESC LIMIT :limit OFFSET :offset",
                {"iid": installation_id, "limit": limit, "offset": offset},
            )
            return [record(InboundEvent, row) for row in rows]

        return await self._db.read(read)
