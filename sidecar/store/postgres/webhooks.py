"""The webhook log and the anti-replay claims of lifecycle webhooks."""

from __future__ import annotations

from sidecar.clock import Clock, format_timestamp
from sidecar.store.postgres._rows import page, record
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.postgres.leases import LeaseClock
from sidecar.store.records import WebhookLogEntry
from sidecar.store.sqlite.webhooks import CLAIM_SQL

__all__ = ["PostgresWebhookClaims", "PostgresWebhookLog"]


class PostgresWebhookLog:
    """`WebhookLog` on PostgreSQL."""

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

        def write(connection: Connection) -> int:
            row = connection.execute(
                "INSERT INTO webhook_log "
                "(received_at, event, installation_id, signature_ok, payload_json) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                params,
            ).fetchone()
            return 0 if row is None else int(row["id"])

        return await self._db.write(write)

    async def list(
        self, *, installation_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[WebhookLogEntry]:
        limit, offset = page(limit, offset)

        def read(connection: Connection) -> list[WebhookLogEntry]:
            rows = connection.execute(
                "SELECT * FROM webhook_log "
                "WHERE (%(iid)s::text IS NULL OR installation_id = %(iid)s::text) "
                "ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
                {"iid": installation_id, "limit": limit, "offset": offset},
            )
            return [
                record(WebhookLogEntry, row, signature_ok=bool(row["signature_ok"])) for row in rows
            ]

        return await self._db.read(read)

    async def get(self, entry_id: int) -> WebhookLogEntry | None:
        def read(connection: Connection) -> WebhookLogEntry | None:
            row = connection.execute(
                "SELECT * FROM webhook_log WHERE id = %s", (entry_id,)
            ).fetchone()
            if row is None:
                return None
            return record(WebhookLogEntry, row, signature_ok=bool(row["signature_ok"]))

        return await self._db.read(read)


class PostgresWebhookClaims:
    """`WebhookClaims` on PostgreSQL: the primary key makes a claim atomic. A retakable
    uncompleted claim (stale, or its claimer not alive) is retaken by the same upsert,
    whose condition PostgreSQL re-checks on the row's latest version once a concurrent
    retake commits (then claimed anew by a live replica): one retake wins.

    Instants are on the lease clock (`LeaseClock`): the server's clock when the store uses
    it, so hosts whose clocks disagree still agree on which claim is stale."""

    def __init__(self, db: Database, clock: LeaseClock) -> None:
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
        # now, and now minus the stale time (a negative duration ahead).
        now, stale, times = self._clock.times(-float(stale_after_seconds))
        params = {**times, "iid": installation_id, "key": dedup_key, "by": claimed_by}
        query = CLAIM_SQL.format(
            iid="%(iid)s",
            key="%(key)s",
            by="%(by)s::text",
            now=now,
            stale=stale,
        )
        taken = await self._db.write(lambda c: c.execute(query, params).rowcount)
        return taken == 1

    async def complete(self, installation_id: str, dedup_key: str) -> None:
        now, times = self._clock.now()
        params = {**times, "iid": installation_id, "key": dedup_key}
        await self._db.write(
            lambda c: c.execute(
                f"UPDATE webhook_claims SET completed_at = {now} "
                "WHERE installation_id = %(iid)s AND dedup_key = %(key)s",
                params,
            )
        )

    async def release(self, installation_id: str, dedup_key: str) -> None:
        await self._db.write(
            lambda c: c.execute(
                "DELETE FROM webhook_claims WHERE installation_id = %s AND dedup_key = %s",
                (installation_id, dedup_key),
            )
        )
