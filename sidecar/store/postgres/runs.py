"""Sync runs: opened `running`, always closed, and orphans of dead processes closed too."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from sidecar.clock import Clock, format_timestamp
from sidecar.store.postgres._rows import page, record, safe_json
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.records import RunKind, RunStatus, SyncRun

__all__ = ["PostgresRuns"]

_CLOSED_STATUSES = frozenset({"ok", "partial", "failed", "cancelled", "interrupted", "skipped"})
_IDS_PER_READ: Final = 500
"""Installations per read of their latest runs (one statement each, an array of ids)."""


class PostgresRuns:
    """`Runs` on PostgreSQL."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def start(self, installation_id: str, kind: RunKind, *, owner: str | None = None) -> int:
        now = format_timestamp(self._clock())

        def write(connection: Connection) -> int:
            row = connection.execute(
                "INSERT INTO sync_runs (installation_id, kind, status, started_at, owner) "
                "VALUES (%s, %s, 'running', %s, %s) RETURNING id",
                (installation_id, kind, now, owner),
            ).fetchone()
            return 0 if row is None else int(row["id"])

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
                "UPDATE sync_runs SET status = %s, summary_json = %s, finished_at = %s "
                "WHERE id = %s",
                (status, summary_json, now, run_id),
            )
        )

    async def get(self, run_id: int) -> SyncRun | None:
        def read(connection: Connection) -> SyncRun | None:
            row = connection.execute("SELECT * FROM sync_runs WHERE id = %s", (run_id,)).fetchone()
            return None if row is None else record(SyncRun, row)

        return await self._db.read(read)

    async def recent(self, installation_id: str, limit: int = 10, offset: int = 0) -> list[SyncRun]:
        limit, offset = page(limit, offset)

        def read(connection: Connection) -> list[SyncRun]:
            rows = connection.execute(
                "SELECT * FROM sync_runs WHERE installation_id = %s ORDER BY id DESC "
                "LIMIT %s OFFSET %s",
                (installation_id, limit, offset),
            )
            return [record(SyncRun, row) for row in rows]

        return await self._db.read(read)

    async def list(
        self, *, status: RunStatus | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[SyncRun]:
        limit, offset = page(limit, offset)

        def read(connection: Connection) -> builtins.list[SyncRun]:
            rows = connection.execute(
                "SELECT * FROM sync_runs "
                + ("" if status is None else "WHERE status = %(status)s ")
                + "ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
                {"status": status, "limit": limit, "offset": offset},
            )
            return [record(SyncRun, row) for row in rows]

        return await self._db.read(read)

    async def latest_statuses(self) -> dict[str, int]:
        def read(connection: Connection) -> dict[str, int]:
            rows = connection.execute(
                "SELECT r.status, COUNT(*) AS n FROM installations i JOIN sync_runs r ON r.id = "
                "(SELECT MAX(m.id) FROM sync_runs m WHERE m.installation_id = i.installation_id) "
                "GROUP BY r.status ORDER BY r.status"
            )
            return {str(row["status"]): int(row["n"]) for row in rows}

        return await self._db.read(read)

    async def latest(self, installation_ids: Sequence[str] | None = None) -> dict[str, SyncRun]:
        def read_all(connection: Connection) -> dict[str, SyncRun]:
            # One index step per installation for its newest run, as on SQLite. Runs never
            # outlive their installation (ON DELETE CASCADE), so none is missed.
            rows = connection.execute(
                "SELECT r.* FROM installations i JOIN sync_runs r ON r.id = "
                "(SELECT MAX(m.id) FROM sync_runs m WHERE m.installation_id = i.installation_id)"
            )
            return {str(row["installation_id"]): record(SyncRun, row) for row in rows}

        if installation_ids is None:
            return await self._db.read(read_all)
        ids = builtins.list(dict.fromkeys(installation_ids))
        latest: dict[str, SyncRun] = {}
        for start in range(0, len(ids), _IDS_PER_READ):
            batch = ids[start : start + _IDS_PER_READ]

            def read(
                connection: Connection, batch: builtins.list[str] = batch
            ) -> builtins.list[SyncRun]:
                rows = connection.execute(
                    "SELECT r.* FROM unnest(%s::text[]) AS i (installation_id) "
                    "JOIN sync_runs r ON r.id = (SELECT MAX(m.id) FROM sync_runs m "
                    'WHERE m.installation_id = i.installation_id COLLATE "C")',
                    (batch,),
                )
                return [record(SyncRun, row) for row in rows]

            latest.update((run.installation_id, run) for run in await self._db.read(read))
        return latest

    async def close_orphans(
        self,
        is_alive: Callable[[str | None], bool],
        reason: str,
        *,
        installation_id: str | None = None,
    ) -> int:
        now = format_timestamp(self._clock())
        summary = json.dumps({"error": reason})

        def write(connection: Connection) -> int:
            running = connection.execute(
                "SELECT id, owner FROM sync_runs WHERE status = 'running' "
                "AND (%(iid)s::text IS NULL OR installation_id = %(iid)s::text) FOR UPDATE",
                {"iid": installation_id},
            ).fetchall()
            orphans = [row["id"] for row in running if not is_alive(row["owner"])]
            if orphans:
                connection.execute(
                    "UPDATE sync_runs SET status = 'interrupted', summary_json = %s, "
                    "finished_at = %s WHERE id = ANY(%s)",
                    (summary, now, orphans),
                )
            return len(orphans)

        return await self._db.write(write)
