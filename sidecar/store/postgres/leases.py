"""Leases: named, expiring, exclusive ownership, decided inside one transaction.

The holder renews its lease while it works; a crashed holder's lease simply expires, or is
taken over at once when the caller can tell its owner is dead (`takeover`).

Several hosts share a PostgreSQL database, and their clocks may disagree: with
`database_clock` (the default of a store opened on the system clock) the instants are the
server's `clock_timestamp()`, so every host judges expiry by one clock. The stored text is
the same fixed-width ISO-8601 UTC as everywhere else. Each operation is one transaction
holding the lease row (`FOR UPDATE`), the place a fencing check can join.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Final

from sidecar.clock import Clock, format_timestamp
from sidecar.store.postgres._rows import record
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.records import Lease

__all__ = ["DATABASE_NOW", "PostgresLeases"]

_FORMAT: Final = """'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"""
DATABASE_NOW: Final = f"to_char(clock_timestamp() AT TIME ZONE 'UTC', {_FORMAT})"
"""The server's clock as a stored timestamp (the format of `sidecar.clock`)."""
_DATABASE_EXPIRES: Final = (
    f"to_char((clock_timestamp() + make_interval(secs => %(ttl)s)) AT TIME ZONE 'UTC', {_FORMAT})"
)


class PostgresLeases:
    """`Leases` on PostgreSQL."""

    def __init__(self, db: Database, clock: Clock, *, database_clock: bool) -> None:
        self._db = db
        self._clock = clock
        self._database_clock = database_clock

    def _times(self, ttl_seconds: float) -> tuple[str, str, dict[str, object]]:
        """SQL for now and for the expiry, and their parameters."""
        if self._database_clock:
            return DATABASE_NOW, _DATABASE_EXPIRES, {"ttl": float(ttl_seconds)}
        now = self._clock()
        return (
            "%(now)s",
            "%(expires)s",
            {
                "now": format_timestamp(now),
                "expires": format_timestamp(now + timedelta(seconds=ttl_seconds)),
            },
        )

    async def acquire(
        self,
        name: str,
        owner: str,
        *,
        ttl_seconds: float,
        takeover: Callable[[str], bool] | None = None,
    ) -> bool:
        now, expires, times = self._times(ttl_seconds)

        def write(connection: Connection) -> bool:
            params = {**times, "name": name, "owner": owner, "forced": False}
            row = connection.execute(
                f"SELECT owner, expires_at <= {now} AS expired FROM leases "
                "WHERE name = %(name)s FOR UPDATE",
                params,
            ).fetchone()
            if row is not None:
                current = str(row["owner"])
                forced = takeover is not None and current != owner and takeover(current)
                if not (current == owner or row["expired"] or forced):
                    return False
                params["forced"] = forced
            # The guard repeats the decision for a row another caller inserted meanwhile.
            won = connection.execute(
                "INSERT INTO leases AS l (name, owner, acquired_at, expires_at) "
                f"VALUES (%(name)s, %(owner)s, {now}, {expires}) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at "
                "WHERE l.owner = excluded.owner OR l.expires_at <= excluded.acquired_at "
                "OR %(forced)s",
                params,
            ).rowcount
            return won == 1

        return await self._db.write(write)

    async def renew(self, name: str, owner: str, *, ttl_seconds: float) -> bool:
        _, expires, times = self._times(ttl_seconds)
        params = {**times, "name": name, "owner": owner}
        changed = await self._db.write(
            lambda c: (
                c.execute(
                    f"UPDATE leases SET expires_at = {expires} "
                    "WHERE name = %(name)s AND owner = %(owner)s",
                    params,
                ).rowcount
            )
        )
        return changed == 1

    async def release(self, name: str, owner: str) -> None:
        await self._db.write(
            lambda c: c.execute("DELETE FROM leases WHERE name = %s AND owner = %s", (name, owner))
        )

    async def get(self, name: str) -> Lease | None:
        def read(connection: Connection) -> Lease | None:
            row = connection.execute("SELECT * FROM leases WHERE name = %s", (name,)).fetchone()
            return None if row is None else record(Lease, row)

        return await self._db.read(read)
