"""Sync cursors and the resume points of windows in progress.

The rules of when a cursor moves live in `sidecar.sync`; this module records what it is
told. Moving a cursor also drops its resume point, in the same transaction: a cursor that
moved while its old resume point survived would be moved backwards by the next resume.
Every write here is fenced (`check_fence`) when given the lease it is made under.
"""

from __future__ import annotations

import builtins

from sidecar.clock import Clock, format_timestamp
from sidecar.store.postgres._rows import record
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.postgres.leases import check_fence
from sidecar.store.records import Cursor, Fence, ResumePoint

__all__ = ["PostgresCursors"]

_SUCCESS = """
INSERT INTO sync_cursors AS c (installation_id, entity, source_key, last_synced_at,
                               last_status, last_error, items, consecutive_failures, updated_at)
VALUES (%s, %s, %s, %s, 'ok', NULL, %s, 0, %s)
ON CONFLICT (installation_id, entity, source_key) DO UPDATE SET
    last_synced_at = excluded.last_synced_at, last_status = 'ok', last_error = NULL,
    items = excluded.items, consecutive_failures = 0, updated_at = excluded.updated_at,
    retry_at = NULL
"""

_FAILURE = """
INSERT INTO sync_cursors AS c (installation_id, entity, source_key, last_synced_at,
                               last_status, last_error, items, consecutive_failures, updated_at,
                               retry_at)
VALUES (%s, %s, %s, NULL, 'error', %s, %s, 1, %s, %s)
ON CONFLICT (installation_id, entity, source_key) DO UPDATE SET
    last_status = 'error', last_error = excluded.last_error, items = excluded.items,
    consecutive_failures = c.consecutive_failures + 1, updated_at = excluded.updated_at,
    retry_at = excluded.retry_at
RETURNING consecutive_failures
"""

_SAVE_RESUME = """
INSERT INTO sync_resume_points (installation_id, entity, source_key, run_kind, window_since,
                                window_until, next_token, pages, items, sent, rejected, updated_at)
VALUES (%(installation_id)s, %(entity)s, %(source_key)s, %(run_kind)s, %(window_since)s,
        %(window_until)s, %(next_token)s, %(pages)s, %(items)s, %(sent)s, %(rejected)s,
        %(updated_at)s)
ON CONFLICT (installation_id, entity, source_key) DO UPDATE SET
    run_kind = excluded.run_kind, window_since = excluded.window_since,
    window_until = excluded.window_until, next_token = excluded.next_token,
    pages = excluded.pages, items = excluded.items, sent = excluded.sent,
    rejected = excluded.rejected, updated_at = excluded.updated_at
"""

_KEY = "installation_id = %s AND entity = %s AND source_key = %s"


class PostgresCursors:
    """`Cursors` on PostgreSQL."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, installation_id: str, entity: str, source_key: str = "") -> Cursor | None:
        def read(connection: Connection) -> Cursor | None:
            row = connection.execute(
                f"SELECT * FROM sync_cursors WHERE {_KEY}", (installation_id, entity, source_key)
            ).fetchone()
            return None if row is None else record(Cursor, row)

        return await self._db.read(read)

    async def list(self, installation_id: str) -> list[Cursor]:
        def read(connection: Connection) -> list[Cursor]:
            rows = connection.execute(
                "SELECT * FROM sync_cursors WHERE installation_id = %s ORDER BY entity, source_key",
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
        fence: Fence | None = None,
    ) -> None:
        now = format_timestamp(self._clock())
        key = (installation_id, entity, source_key)

        def write(connection: Connection) -> None:
            check_fence(connection, fence)
            connection.execute(_SUCCESS, (*key, synced_at, items, now))
            connection.execute(f"DELETE FROM sync_resume_points WHERE {_KEY}", key)

        await self._db.write(write)

    async def record_failure(
        self,
        installation_id: str,
        entity: str,
        source_key: str,
        *,
        error: str,
        items: int,
        keep_resume_point: bool = True,
        retry_at: str | None = None,
        fence: Fence | None = None,
    ) -> int:
        now = format_timestamp(self._clock())
        key = (installation_id, entity, source_key)

        def write(connection: Connection) -> int:
            check_fence(connection, fence)
            row = connection.execute(_FAILURE, (*key, error, items, now, retry_at)).fetchone()
            if not keep_resume_point:
                connection.execute(f"DELETE FROM sync_resume_points WHERE {_KEY}", key)
            return 0 if row is None else int(row["consecutive_failures"])

        return await self._db.write(write)

    async def reset(
        self,
        installation_id: str,
        entity: str,
        source_key: str = "",
        *,
        fence: Fence | None = None,
    ) -> bool:
        key = (installation_id, entity, source_key)

        def write(connection: Connection) -> bool:
            check_fence(connection, fence)
            removed = connection.execute(f"DELETE FROM sync_cursors WHERE {_KEY}", key).rowcount
            removed += connection.execute(
                f"DELETE FROM sync_resume_points WHERE {_KEY}", key
            ).rowcount
            return removed > 0

        return await self._db.write(write)

    async def count_in_error(self) -> int:
        def read(connection: Connection) -> int:
            row = connection.execute(
                "SELECT COUNT(*) AS n FROM sync_cursors WHERE last_status = 'error'"
            ).fetchone()
            return 0 if row is None else int(row["n"])

        return await self._db.read(read)

    async def resume_point(
        self, installation_id: str, entity: str, source_key: str = ""
    ) -> ResumePoint | None:
        def read(connection: Connection) -> ResumePoint | None:
            row = connection.execute(
                f"SELECT * FROM sync_resume_points WHERE {_KEY}",
                (installation_id, entity, source_key),
            ).fetchone()
            return None if row is None else record(ResumePoint, row)

        return await self._db.read(read)

    async def save_resume_point(self, point: ResumePoint, *, fence: Fence | None = None) -> None:
        params = {
            "installation_id": point.installation_id,
            "entity": point.entity,
            "source_key": point.source_key,
            "run_kind": point.run_kind,
            "window_since": point.window_since,
            "window_until": point.window_until,
            "next_token": point.next_token,
            "pages": point.pages,
            "items": point.items,
            "sent": point.sent,
            "rejected": point.rejected,
            "updated_at": format_timestamp(self._clock()),
        }

        def write(connection: Connection) -> None:
            check_fence(connection, fence)
            connection.execute(_SAVE_RESUME, params)

        await self._db.write(write)

    async def resume_points(self, installation_id: str | None = None) -> builtins.list[ResumePoint]:
        def read(connection: Connection) -> builtins.list[ResumePoint]:
            rows = connection.execute(
                "SELECT * FROM sync_resume_points "
                "WHERE (%(iid)s::text IS NULL OR installation_id = %(iid)s::text) "
                "ORDER BY installation_id, entity, source_key",
                {"iid": installation_id},
            )
            return [record(ResumePoint, row) for row in rows]

        return await self._db.read(read)
