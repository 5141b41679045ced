"""The webhook log and the anti-replay claims of lifecycle webhooks."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Final

from sidecar.clock import Clock, format_timestamp
from sidecar.store.records import WebhookLogEntry
from sidecar.store.sqlite._rows import page, record
from sidecar.store.sqlite.database import Database

__all__ = ["CLAIM_SQL", "SqliteWebhookClaims", "SqliteWebhookLog"]

CLAIM_SQL: Final = """
    INSERT INTO webhook_claims (installation_id, dedup_key, claimed_at, claimed_by)
    VALUES ({iid}, {key}, {now}, {by})
    ON CONFLICT (installation_id, dedup_key) DO UPDATE
       SET claimed_at = excluded.claimed_at, claimed_by = excluded.claimed_by
     WHERE webhook_claims.completed_at IS NULL
       AND (webhook_claims.claimed_at <= {stale}
            OR (webhook_claims.claimed_by IS NOT NULL
                AND NOT EXISTS (
                    SELECT 1 FROM replicas AS r
                     WHERE r.id = webhook_claims.claimed_by
                       AND r.stopped_at IS NULL
                       AND r.alive_until > {now}
                       AND r.started_at <= webhook_claims.claimed_at)))"""
"""A claim in one statement: inserted, or an uncompleted claim retaken when stale, or
at once when its claimer is not alive: its replicas row is missing, stopped, past
`alive_until`, or (re)started after the claim (a new incarnation of the replica id). A
claim without a claimer (made before migration 10) goes stale only. `{now}` is the
database's now (SQL or a parameter), `{stale}` now minus the stale time; the other
fields are parameters."""


class SqliteWebhookLog:
    """`WebhookLog` on SQLite."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def append(
        self,
        *,
        event: str | None,
        installation_id: str | None,
        signature_ok: bool,
        payload_json: str,
    ) -> int:
        params = (
            format_timestamp(self._clock()),
            event,
            installation_id,
            int(signature_ok),
            payload_json,
        )

        def write(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "INSERT INTO webhook_log "
                "(received_at, event, installation_id, signature_ok, payload_json) "
                "VALUES (?, ?, ?, ?, ?)",
                params,
            )
            return int(cursor.lastrowid or 0)

        return await self._db.write(write)

    async def list(
        self, *, installation_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[WebhookLogEntry]:
        limit, offset = page(limit, offset)

        def read(connection: sqlite3.Connection) -> list[WebhookLogEntry]:
            rows = connection.execute(
                "SELECT * FROM webhook_log WHERE (:iid IS NULL OR installation_id = :iid) "
                "ORDER BY id DESC LIMIT :limit OFFSET :offset",
                {"iid": installation_id, "limit": limit, "offset": offset},
            )
            return [
                record(WebhookLogEntry, row, signature_ok=bool(row["signature_ok"])) for row in rows
            ]

        return await self._db.read(read)

    async def get(self, entry_id: int) -> WebhookLogEntry | None:
        def read(connection: sqlite3.Connection) -> WebhookLogEntry | None:
            row = connection.execute(
                "SELECT * FROM webhook_log WHERE id = ?", (entry_id,)
            ).fetchone()
            if row is None:
                return None
            return record(WebhookLogEntry, row, signature_ok=bool(row["signature_ok"]))

        return await self._db.read(read)


class SqliteWebhookClaims:
    """`WebhookClaims` on SQLite: the primary key makes a claim atomic, and the upsert
    retakes a retakable uncompleted claim in the same statement (writes are serialized)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def claim(
        self,
        installation_id: str,
        dedup_key: str,
        *,
        claimed_by: str | None,
        stale_after_seconds: float,
    ) -> bool:
        now = self._clock()
        params = {
            "iid": installation_id,
            "key": dedup_key,
            "by": claimed_by,
            "now": format_timestamp(now),
            "stale": format_timestamp(now - timedelta(seconds=stale_after_seconds)),
        }
        query = CLAIM_SQL.format(iid=":iid", key=":key", by=":by", now=":now", stale=":stale")
        taken = await self._db.write(lambda c: c.execute(query, params).rowcount)
        return taken == 1

    async def complete(self, installation_id: str, dedup_key: str) -> None:
        now = format_timestamp(self._clock())
        await self._db.write(
            lambda c: c.execute(
                "UPDATE webhook_claims SET completed_at = ? "
                "WHERE installation_id = ? AND dedup_key = ?",
                (now, installation_id, dedup_key),
            )
        )

    async def release(self, installation_id: str, dedup_key: str) -> None:
        await self._db.write(
            lambda c: c.execute(
                "DELETE FROM webhook_claims WHERE installation_id = ? AND dedup_key = ?",
                (installation_id, dedup_key),
            )
        )
