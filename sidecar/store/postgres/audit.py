"""The audit log of operator actions. Details are redacted before they are stored."""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.clock import Clock, format_timestamp
from sidecar.security.redaction import redact
from sidecar.store.postgres._rows import page, record, safe_json
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.records import AuditEntry

__all__ = ["PostgresAuditLog"]


class PostgresAuditLog:
    """`AuditLog` on PostgreSQL."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

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
        params = (
            format_timestamp(self._clock()),
            actor,
            action,
            installation_id,
            target,
            safe_json(redact(dict(detail or {}))),
            client_ip,
        )

        def write(connection: Connection) -> int:
            row = connection.execute(
                "INSERT INTO audit_log (at, actor, action, installation_id, target, detail_json, "
                "client_ip) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                params,
            ).fetchone()
            return 0 if row is None else int(row["id"])

        return await self._db.write(write)

    async def list(
        self,
        *,
        action: str | None = None,
        installation_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        limit, offset = page(limit, offset)
        where = " AND ".join(
            condition
            for condition, value in (
                ("action = %(action)s", action),
                ("installation_id = %(iid)s", installation_id),
            )
            if value is not None
        )
        params = {"action": action, "iid": installation_id, "limit": limit, "offset": offset}

        def read(connection: Connection) -> list[AuditEntry]:
            rows = connection.execute(
                "SELECT * FROM audit_log "
                + (f"WHERE {where} " if where else "")
                + "ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
                params,
            )
            return [record(AuditEntry, row) for row in rows]

        return await self._db.read(read)
