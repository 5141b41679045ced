"""Leases and their fences: named, expiring, exclusive ownership with an epoch.

The one place of the PostgreSQL store where a lease is taken, renewed, released, and where
a fenced write checks that its lease is still held (`check_fence`).

Several hosts share a PostgreSQL database, and their clocks may disagree: with
`database_clock` (the default of a store opened on the system clock) the instants are the
server's `clock_timestamp()`, so every host judges expiry by one clock. The stored text is
the same fixed-width ISO-8601 UTC as everywhere else.

Each operation is one transaction holding the lease row. `acquire` locks it `FOR UPDATE`
(or inserts it), so of several callers racing for one name exactly one takes it and the
epoch grows by one per takeover. A fenced write locks it `FOR SHARE` until its commit: a
takeover waits for that commit, or the write sees the new epoch and refuses — never both.
Rows are never deleted (release only ends the hold), so a name's epoch only ever grows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sidecar.clock import Clock, format_timestamp
from sidecar.errors import LeaseLostError, StoreError
from sidecar.store.postgres._rows import record
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.records import Fence, Grant, Lease

__all__ = ["DATABASE_NOW", "LeaseClock", "PostgresLeases", "check_fence"]

_FORMAT: Final = """'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"""
DATABASE_NOW: Final = f"to_char(clock_timestamp() AT TIME ZONE 'UTC', {_FORMAT})"
"""The server's clock as a stored timestamp (the format of `sidecar.clock`)."""
_DATABASE_EXPIRES: Final = (
    f"to_char((clock_timestamp() + make_interval(secs => %(ttl)s)) AT TIME ZONE 'UTC', {_FORMAT})"
)
_ATTEMPTS: Final = 3
"""Decisions per acquire: a row another caller inserted meanwhile is decided on again."""


def check_fence(connection: Connection, fence: Fence | None) -> None:
    """Inside the caller's transaction: refuse with `LeaseLostError` unless the lease row
    `fence.name` still has `fence.owner` and `fence.epoch`. The row stays locked `FOR SHARE`
    until the transaction ends, so no takeover can commit between this check and the
    caller's write. No fence: nothing is checked (an unfenced write, as before leases)."""
    if fence is None:
        return
    row = connection.execute(
        "SELECT owner, epoch FROM leases WHERE name = %s FOR SHARE", (fence.name,)
    ).fetchone()
    if row is None or str(row["owner"]) != fence.owner or int(row["epoch"]) != fence.epoch:
        raise LeaseLostError(name=fence.name, owner=fence.owner, epoch=fence.epoch)


@dataclass(frozen=True, slots=True)
class LeaseClock:
    """What "now" is for leases: the server's clock, or the store's `Clock` (tests)."""

    clock: Clock
    database: bool

    def now(self) -> tuple[str, dict[str, object]]:
        """SQL for now, and its parameters. Read on the event loop's side (a test's clock
        may be tied to trio), before the operation goes to its thread."""
        if self.database:
            return DATABASE_NOW, {}
        return "%(now)s", {"now": format_timestamp(self.clock())}

    def times(self, ttl_seconds: float) -> tuple[str, str, dict[str, object]]:
        """SQL for now and for now + `ttl_seconds`, and their parameters."""
        if self.database:
            return DATABASE_NOW, _DATABASE_EXPIRES, {"ttl": float(ttl_seconds)}
        now = self.clock()
        return (
            "%(now)s",
            "%(expires)s",
            {
                "now": format_timestamp(now),
                "expires": format_timestamp(now + timedelta(seconds=ttl_seconds)),
            },
        )


class PostgresLeases:
    """`Leases` on PostgreSQL."""

    def __init__(self, db: Database, clock: Clock, *, database_clock: bool) -> None:
        self._db = db
        self._clock = LeaseClock(clock, database_clock)

    @property
    def clock(self) -> LeaseClock:
        """The lease clock, shared with the runs (abandoned runs are judged by it)."""
        return self._clock

    async def acquire(
        self,
        name: str,
        owner: str,
        *,
        ttl_seconds: float,
        takeover: Callable[[str], bool] | None = None,
    ) -> Grant | None:
        now, expires, times = self._clock.times(ttl_seconds)
        params = {**times, "name": name, "owner": owner}

        def write(connection: Connection) -> Grant | None:
            for _ in range(_ATTEMPTS):
                row = connection.execute(
                    f"SELECT owner, epoch, expires_at <= {now} AS expired, "
                    "expires_at = acquired_at AS released FROM leases "
                    "WHERE name = %(name)s FOR UPDATE",
                    params,
                ).fetchone()
                if row is None:
                    # ON CONFLICT waits for a concurrent inserter's commit; then its row is
                    # locked and decided on like any other by the next round.
                    inserted = connection.execute(
                        "INSERT INTO leases (name, owner, epoch, acquired_at, expires_at) "
                        f"VALUES (%(name)s, %(owner)s, 1, {now}, {expires}) "
                        "ON CONFLICT (name) DO NOTHING RETURNING epoch",
                        params,
                    ).fetchone()
                    if inserted is not None:
                        return Grant(fence=Fence(name=name, owner=owner, epoch=1), taken_from=None)
                    continue
                current, epoch = str(row["owner"]), int(row["epoch"])
                if current == owner and not row["expired"]:
                    connection.execute(
                        f"UPDATE leases SET expires_at = {expires} WHERE name = %(name)s", params
                    )
                    fence = Fence(name=name, owner=owner, epoch=epoch)
                    return Grant(fence=fence, taken_from=None)
                if not (row["expired"] or (takeover is not None and takeover(current))):
                    return None
                connection.execute(
                    f"UPDATE leases SET owner = %(owner)s, epoch = epoch + 1, acquired_at = {now}, "
                    f"expires_at = {expires} WHERE name = %(name)s",
                    params,
                )
                fence = Fence(name=name, owner=owner, epoch=epoch + 1)
                return Grant(fence=fence, taken_from=None if row["released"] else current)
            raise StoreError(f"lease {name!r}: no decision after {_ATTEMPTS} attempts")

        return await self._db.write(write)

    async def renew(self, fence: Fence, *, ttl_seconds: float) -> bool:
        _, expires, times = self._clock.times(ttl_seconds)
        params = {**times, "name": fence.name, "owner": fence.owner, "epoch": fence.epoch}
        changed = await self._db.write(
            lambda c: (
                c.execute(
                    f"UPDATE leases SET expires_at = {expires} "
                    "WHERE name = %(name)s AND owner = %(owner)s AND epoch = %(epoch)s",
                    params,
                ).rowcount
            )
        )
        return changed == 1

    async def release(self, fence: Fence) -> None:
        now, times = self._clock.now()
        params = {**times, "name": fence.name, "owner": fence.owner, "epoch": fence.epoch}
        # Expired now, and stamped acquired_at = expires_at so the next holder can tell a
        # release from a lapse (its `Grant.taken_from`), as on SQLite; owner and epoch stay.
        await self._db.write(
            lambda c: c.execute(
                "UPDATE leases SET acquired_at = n.at, expires_at = n.at "
                f"FROM (SELECT {now} AS at) AS n "
                "WHERE name = %(name)s AND owner = %(owner)s AND epoch = %(epoch)s",
                params,
            )
        )

    async def get(self, name: str) -> Lease | None:
        def read(connection: Connection) -> Lease | None:
            row = connection.execute("SELECT * FROM leases WHERE name = %s", (name,)).fetchone()
            return None if row is None else record(Lease, row)

        return await self._db.read(read)

    async def held(self) -> list[Lease]:
        now, times = self._clock.now()

        def read(connection: Connection) -> list[Lease]:
            rows = connection.execute(
                f"SELECT * FROM leases WHERE expires_at > {now} ORDER BY name", times
            )
            return [record(Lease, row) for row in rows]

        return await self._db.read(read)
