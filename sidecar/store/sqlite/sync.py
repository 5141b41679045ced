"""Sync cursors and sync runs. The rules of when a cursor moves live in `sidecar.sync`;
this module only records what it is told, each change in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from sidecar.clock import Clock, format_timestamp
from sidecar.store.records import Cursor, RunKind, RunStatus, SyncRun
from sidecar.store.sqlite._rows import page, record, safe_json
from sidecar.store.sqlite.database import Database

__all__ = ["SqliteCursors", "SqliteRuns"]

_SUCCESS = """
INSERT INTO sync_cursors (installation_id, entity, source_key, last_synced_at, last_status,
                          last_error, items, consecutive_failures, updated_at)
VALUES (?, ?, ?, ?, 'ok', NULL, ?, 0, ?)
ON CONFLICT (installation_id, entity, source_key) DO UPDATE SET
    last_synced_at = excluded.last_synced_at, last_status = 'ok', last_error = NULL,
    items = excluded.items, consecutive_failures = 0, updated_at = excluded.updated_at
"""

_FAILURE = """
INSERT INTO sync_cursors (installation_id, entity, source_key, last_synced_at, last_status,
                          last_error, items, consecutive_failures, updated_at)
VALUES (?, ?, ?, NULL, 'error', ?, ?, 1, ?)
ON CONFLICT (installation_id, entity, source_key) DO UPDATE SET
    last_status = 'error', last_error = excluded.last_error, items = excluded.items,
    consecutive_failures = consecutive_failures + 1, updated_at = excluded.updated_at
"""

_CLOSED_STATUSES = frozenset({"ok", "partial", "failed", "cancelled"})


class SqliteCursors:
    """`Cursors` on SQLite."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, installation_id: str, entity: str, source_key: str = "") -> Cursor | None:
        def read(connection: sqlite3.Connection) -> Cursor | None:
            row = connection.execute(
                "SELECT * FROM sync_cursors "
                "WHERE installation_id = ? AND entity = ? AND source_key = ?",
                (installation_id, entity, source_key),
            ).fetchone()
            return None if row is None else record(Cursor, row)

        return await self._db.read(read)

    async def list(self, installation_id: str) -> list[Cursor]:
        def read(connection: sqlite3.Connection) -> list[Cursor]:
            rows = connection.execute(
                "SELECT * FROM sync_cursors WHERE installation_id = ? ORDER BY entity, source_key",
                (installation_id,),
            )
            return [record(Cursor, row) for row in rows]

        return await self._db.read(read)

    async def record_success(
        self,
        installation_id: str,
        entity: str,
        source_key: str,
        *,
        synced_at: str,
        items: int,
    ) -> None:
        now = format_timestamp(self._clock())
        await self._db.write(
            lambda c: c.execute(
                _SUCCESS, (installation_id, entity, source_key, synced_at, items, now)
            )
        )

    async def record_failure(
        self, installation_id: str, entity: str, source_key: str, *, error: str, items: int
    ) -> int:
        now = format_timestamp(self._clock())

        def write(connection: sqlite3.Connection) -> int:
            connection.execute(_FAILURE, (installation_id, entity, source_key, error, items, now))
            row = connection.execute(
                "SELECT consecutive_failures FROM sync_cursors "
                "WHERE installation_id = ? AND entity = ? AND source_key = ?",
                (installation_id, entity, source_key),
            ).fetchone()
            return int(row[0])

        return await self._db.write(write)

    async def count_in_error(self) -> int:
        return await self._db.read(
            lambda c: int(
                c.execute(
                    "SELECT COUNT(*) FROM sync_cursors WHERE last_status = 'error'"
                ).fetchone()[0]
            )
        )


class SqliteRuns:
    """`Runs` on SQLite."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def start(self, installation_id: str, kind: RunKind) -> int:
        now = format_timestamp(self._clock())

        def write(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "INSERT INTO sync_runs (installation_id, kind, status, started_at) "
                "VALUES (?, ?, 'running', ?)",
                (installation_id, kind, now),
            )
            return int(cursor.lastrowid or 0)

        return await self._db.write(write)

    async def finish(self, run_id: int, status: RunStatus, summary: Mapping[str, object]) -> None:
        if status not in _CLOSED_STATUSES:
            raise ValueError(
                f"a run is closed as one of {sorted(_CLOSED_STATUSES)}; got {status!r}"
            )
        # safe_json never raises: an odd summary must not leave the run `running` forever.
        summary_json = safe_json(summary)
        now = format_timestamp(self._clock())
        await self._db.write(
            lambda c: c.execute(
                "UPDATE sync_runs SET status = ?, summary_json = ?, finished_at = ? WHERE id = ?",
                (status, summary_json, now, run_id),
            )
        )

    async def get(self, run_id: int) -> SyncRun | None:
        def read(connection: sqlite3.Connection) -> SyncRun | None:
            row = connection.execute("SELECT * FROM sync_runs WHERE id = ?", (run_id,)).fetchone()
            return None if row is None else record(SyncRun, row)

        return await self._db.read(read)

    async def recent(self, installation_id: str, limit: int = 10) -> list[SyncRun]:
        limit, _ = page(limit, 0)

        def read(connection: sqlite3.Connection) -> list[SyncRun]:
            rows = connection.execute(
                "SELECT * FROM sync_runs WHERE installation_id = ? ORDER BY id DESC LIMIT ?",
                (installation_id, limit),
            )
            return [record(SyncRun, row) for row in rows]

        return await self._db.read(read)
