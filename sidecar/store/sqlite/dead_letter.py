"""The dead-letter: items ShopiMind rejected, kept for inspection and replay."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sidecar.clock import Clock, format_timestamp
from sidecar.store.records import Fence, RejectedItem, RejectedItemInput
from sidecar.store.sqlite._rows import page, record, safe_json
from sidecar.store.sqlite.database import Database
from sidecar.store.sqlite.leases import fenced
from sidecar.store.sqlite.tallies import read_tally

__all__ = ["SqliteDeadLetter", "insert_rejected"]


def insert_rejected(
    connection: sqlite3.Connection,
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
    connection.executemany(
        "INSERT INTO rejected_items (installation_id, run_id, entity, source_key, target, "
        "item_json, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


class SqliteDeadLetter:
    """`DeadLetter` on SQLite."""

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
        return await self._db.write(
            fenced(
                fence,
                lambda c: insert_rejected(
                    c,
                    installation_id,
                    run_id=run_id,
                    entity=entity,
                    source_key=source_key,
                    target=target,
                    items=items,
                    now=now,
                ),
            )
        )

    async def list(
        self, *, installation_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[RejectedItem]:
        limit, offset = page(limit, offset)

        def read(connection: sqlite3.Connection) -> list[RejectedItem]:
            rows = connection.execute(
                "SELECT * FROM rejected_items WHERE (:iid IS NULL OR installation_id = :iid) "
                "ORDER BY id DESC LIMIT :limit OFFSET :offset",
                {"iid": installation_id, "limit": limit, "offset": offset},
            )
            return [record(RejectedItem, row) for row in rows]

        return await self._db.read(read)

    async def get(self, item_id: int) -> RejectedItem | None:
        def read(connection: sqlite3.Connection) -> RejectedItem | None:
            row = connection.execute(
                "SELECT * FROM rejected_items WHERE id = ?", (item_id,)
            ).fetchone()
            return None if row is None else record(RejectedItem, row)

        return await self._db.read(read)

    async def delete(self, ids: Sequence[int], *, installation_id: str | None = None) -> int:
        unique = sorted({int(i) for i in ids})

        def write(connection: sqlite3.Connection) -> int:
            removed = 0
            for start in range(0, len(unique), 500):  # stay under SQLite's variable limit
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                removed += connection.execute(
                    f"DELETE FROM rejected_items WHERE id IN ({marks}) "
                    "AND (? IS NULL OR installation_id = ?)",
                    (*chunk, installation_id, installation_id),
                ).rowcount
            return removed

        return await self._db.write(write)

    async def clear(self, installation_id: str) -> int:
        return await self._db.write(
            lambda c: (
                c.execute(
                    "DELETE FROM rejected_items WHERE installation_id = ?", (installation_id,)
                ).rowcount
            )
        )

    async def count(self, installation_id: str | None = None) -> int:
        # From the tally the triggers keep (migration 7), not a count of the rows.
        return await self._db.read(lambda c: read_tally(c, "dead_letter", installation_id))
