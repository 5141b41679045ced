"""Sync runs: opened `running`, always closed; the runs of a lease no one holds any more
(its replica died or stalled) are closed too, by whoever looks first.

Opening, closing and interrupting a run are fenced writes (`check_fence`): a replica that
lost its installation's lease cannot touch the runs of the replica that took it over."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from typing import Final

from sidecar.clock import Clock, format_timestamp
from sidecar.store.postgres._rows import page, record, safe_json
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.postgres.leases import LeaseClock, check_fence
from sidecar.store.records import Fence, RunKind, RunStatus, SyncRun

__all__ = ["PostgresRuns"]

_CLOSED_STATUSES = frozenset({"ok", "partial", "failed", "cancelled", "interrupted", "skipped"})
_IDS_PER_READ: Final = 500
"""Installations per read of their latest runs (one statement each, an array of ids)."""


class PostgresRuns:
    """`Runs` on PostgreSQL."""

    def __init__(self, db: Database, clock: Clock, lease_clock: LeaseClock) -> None:
        self._db = db
        self._clock = clock
        self._lease_clock = lease_clock

    async def start(
        self,
        installation_id: str,
        kind: RunKind,
        *,
        owner: str | None = None,
        fence: Fence | None = None,
    ) -> int:
        now = format_timestamp(self._clock())

        def write(connection: Connection) -> int:
            check_fence(connection, fence)
            row = connection.execute(
                "INSERT INTO sync_runs (installation_id, kind, status, started_at, owner) "
                "VALUES (%s, %s, 'running', %s, %s) RETURNING id",
                (installation_id, kind, now, owner),
            ).fetchone()
            return 0 if row is None else int(row["id"])

        return await self._db.write(write)

    async def finish(
        self,
        run_id: int,
        status: RunStatus,
        summary: Mapping[str, object],
        *,
        fence: Fence | None = None,
    ) -> None:
        if status not in _CLOSED_STATUSES:
            raise ValueError(
                f"a run is closed as one of {sorted(_CLOSED_STATUSES)}; got {status!r}"
            )
        # safe_json never raises: an odd summary must not leave the run `running` forever.
        summary_json = safe_json(summary)
        now = format_timestamp(self._clock())

        def write(connection: Connection) -> None:
            check_fence(connection, fence)
            connection.execute(
                "UPDATE sync_runs SET status = %s, summary_json = %s, finished_at = %s "
                "WHERE id = %s",
                (status, summary_json, now, run_id),
            )

        await self._db.write(write)

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

    async def close_running(self, installation_id: str, reason: str, *, fence: Fence) -> int:
        now = format_timestamp(self._clock())
        summary = json.dumps({"error": reason})

        def write(connection: Connection) -> int:
            check_fence(connection, fence)
            return connection.execute(
                "UPDATE sync_runs SET status = 'interrupted', summary_json = %s, "
                "finished_at = %s WHERE installation_id = %s AND status = 'running'",
                (summary, now, installation_id),
            ).rowcount

        return await self._db.write(write)

    async def close_abandoned(self, reason: str) -> int:
        now = format_timestamp(self._clock())
        lease_now, times = self._lease_clock.now()
        params = {**times, "summary": json.dumps({"error": reason}), "finished": now}

        def write(connection: Connection) -> int:
            # Unexpired by the lease clock: the database's when the hosts share it.
            return connection.execute(
                "UPDATE sync_runs AS r SET status = 'interrupted', "
                "summary_json = %(summary)s, finished_at = %(finished)s "
                "WHERE r.status = 'running' AND NOT EXISTS (SELECT 1 FROM leases AS l "
                "WHERE l.name = 'installation:' || r.installation_id "
                f"AND l.expires_at > {lease_now})",
                params,
            ).rowcount

        return await self._db.write(write)
