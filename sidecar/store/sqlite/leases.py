"""Leases: named, expiring, exclusive ownership, decided inside one write transaction.

The holder renews its lease while it works; a crashed holder's lease simply expires, or is
taken over at once when the caller can tell its owner is dead (`takeover`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta

from sidecar.clock import Clock, format_timestamp
from sidecar.store.records import Lease
from sidecar.store.sqlite._rows import record
from sidecar.store.sqlite.database import Database

__all__ = ["SqliteLeases"]


class SqliteLeases:
    """`Leases` on SQLite."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def _times(self, ttl_seconds: float) -> tuple[str, str]:
        now = self._clock()
        return format_timestamp(now), format_timestamp(now + timedelta(seconds=ttl_seconds))

    async def acquire(
        self,
        name: str,
        owner: str,
        *,
        ttl_seconds: float,
        takeover: Callable[[str], bool] | None = None,
    ) -> bool:
        now, expires = self._times(ttl_seconds)

        def write(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT owner, expires_at FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is not None:
                current = str(row["owner"])
                free = (
                    current == owner
                    or str(row["expires_at"]) <= now
                    or (takeover is not None and takeover(current))
                )
                if not free:
                    return False
            connection.execute(
                "INSERT INTO leases (name, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                (name, owner, now, expires),
            )
            return True

        return await self._db.write(write)

    async def renew(self, name: str, owner: str, *, ttl_seconds: float) -> bool:
        _, expires = self._times(ttl_seconds)
        changed = await self._db.write(
            lambda c: (
                c.execute(
                    "UPDATE leases SET expires_at = ? WHERE name = ? AND owner = ?",
                    (expires, name, owner),
                ).rowcount
            )
        )
        return changed == 1

    async def release(self, name: str, owner: str) -> None:
        await self._db.write(
            lambda c: c.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
        )

    async def get(self, name: str) -> Lease | None:
        def read(connection: sqlite3.Connection) -> Lease | None:
            row = connection.execute("SELECT * FROM leases WHERE name = ?", (name,)).fetchone()
            return None if row is None else record(Lease, row)

        return await self._db.read(read)
