"""The audit log of operator actions. Details are redacted before they are stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from sidecar.clock import Clock, format_timestamp
from sidecar.security.redaction import redact
from sidecar.store.records import AuditEntry
from sidecar.store.sqlite._rows import page, record, safe_json
from sidecar.store.sqlite.database import Database

__all__ = ["SqliteAuditLog"]


class SqliteAuditLog:
    """`AuditLog` on SQLite."""

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

        def write(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "INSERT INTO audit_log (at, actor, action, installation_id, target, detail_json, "
                "client_ip) VALUES (?, ?, ?, ?, ?, ?, ?)",
                params,
            )
            return int(cursor.lastrowid or 0)

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
                ("action = :action", action),
                ("installation_id = :iid", installation_id),
            )
            if value is not None
        )
        params = {"action": action, "iid": installation_id, "limit": limit, "offset": offset}

        def read(connection: sqlite3.Connection) -> list[AuditEntry]:
            rows = connection.execute(
                "SELECT * FROM audit_log "
                + (f"WHERE {where} " if where else "")
                + "ORDER BY id DESC LIMIT :limit OFFSET :offset",
                params,
            )
            return [record(AuditEntry, row) for row in rows]

        return await self._db.read(read)
