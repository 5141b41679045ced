"""The dead-letter: items ShopiMind rejected, kept for inspection and replay."""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.clock import Clock, format_timestamp
from sidecar.store.postgres._rows import page, record, safe_json
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.postgres.leases import check_fence
from sidecar.store.postgres.tallies import read_tally
from sidecar.store.records import Fence, RejectedItem, RejectedItemInput

__all__ = ["PostgresDeadLetter", "insert_rejected"]


def insert_rejected(
    connection: Connection,
    installation_id: str,
    *,
    run_id: int | None,
    entity: str,
    source_key: str,
    target: str,
    items: Sequence[RejectedItemInput],
    now: str,
) -> int:
    """Insert rejected items inside the caller's transaction (so another repository can
    dead-letter something atomically with its own change); return how many."""
    rows = [
        (installation_id, run_id, entity, source_key, target, safe_json(i.item), i.reason, now)
        for i in items
    ]
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO rejected_items (installation_id, run_id, entity, source_key, "
                "target, item_json, reason, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
    return len(rows)


class PostgresDeadLetter:
    """`DeadLetter` on PostgreSQL."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def add(
        self,
        installation_id: str,
        *,
        run_id: int | None,
        entity: str,
        source_key: str,
        target: str,
        items: Sequence[RejectedItemInput],
        fence: Fence | None = None,
    ) -> int:
        now = format_timestamp(self._clock())

        def write(connection: Connection) -> int:
            check_fence(connection, fence)
            return insert_rejected(
                connection,
                installation_id,
                run_id=run_id,
                entity=entity,
                source_key=source_key,
                target=target,
                items=items,
                now=now,
            )

        return await self._db.write(write)

    async def list(
        self, *, installation_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[RejectedItem]:
        limit, offset = page(limit, offset)

        def read(connection: Connection) -> list[RejectedItem]:
            rows = connection.execute(
                "SELECT * FROM rejected_items "
                "WHERE (%(iid)s::text IS NULL OR installation_id = %(iid)s::text) "
                "ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
                {"iid": installation_id, "limit": limit, "offset": offset},
            )
            return [record(RejectedItem, row) for row in rows]

        return await self._db.read(read)

    async def get(self, item_id: int) -> RejectedItem | None:
        def read(connection: Connection) -> RejectedItem | None:
            row = connection.execute(
                "SELECT * FROM rejected_items WHERE id = %s", (item_id,)
            ).fetchone()
            return None if row is None else record(RejectedItem, row)

        return await self._db.read(read)

    async def delete(self, ids: Sequence[int], *, installation_id: str | None = None) -> int:
        unique = sorted({int(i) for i in ids if -(2**63) <= int(i) < 2**63})

        def write(connection: Connection) -> int:
            if not unique:
                return 0
            return connection.execute(
                "DELETE FROM rejected_items WHERE id = ANY(%(ids)s) "
                "AND (%(iid)s::text IS NULL OR installation_id = %(iid)s::text)",
                {"ids": unique, "iid": installation_id},
            ).rowcount

        return await self._db.write(write)

    async def clear(self, installation_id: str) -> int:
        return await self._db.write(
            lambda c: (
                c.execute(
                    "DELETE FROM rejected_items WHERE installation_id = %s", (installation_id,)
                ).rowcount
            )
        )

    async def count(self, installation_id: str | None = None) -> int:
        # From the tally the triggers keep (migration 7), not a count of the rows.
        return await self._db.read(lambda c: read_tally(c, "dead_letter", installation_id))
