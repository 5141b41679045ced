"""Leases and fencing on SQLite: named, expiring, exclusive ownership with an epoch, and
the one check every fenced write makes inside its own transaction (`fenced`).

Each new holder of a name gets the previous epoch + 1; the row is never deleted (a
release expires it), so an epoch is never reused. A holder that stalled past its expiry
and was taken over still carries the old epoch: its fenced writes find a different one
and change nothing. SQLite lives on one host, so the store's clock is the database's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sidecar.clock import Clock, format_timestamp
from sidecar.errors import LeaseLostError
from sidecar.store.records import Fence, Grant, Lease
from sidecar.store.sqlite._rows import record
from sidecar.store.sqlite.database import Database, Operation

__all__ = ["SqliteLeases", "check_fence", "fenced"]

T = TypeVar("T")

_HOLDS = "name = ? AND owner = ? AND epoch = ?"


def check_fence(connection: sqlite3.Connection, fence: Fence | None) -> None:
    """Raise LeaseLostError unless the lease row `fence.name` still has `fence.owner` at
    `fence.epoch` (expired or not: until someone takes it, nobody else worked). Called
    first in the write transaction, so the rest of the write sees the lease it checked."""
    if fence is None:
        return
    row = connection.execute(
        f"SELECT 1 FROM leases WHERE {_HOLDS}", (fence.name, fence.owner, fence.epoch)
    ).fetchone()
    if row is None:
        raise LeaseLostError(fence.name, fence.owner, fence.epoch)


def fenced(fence: Fence | None, operation: Operation[T]) -> Operation[T]:
    """`operation`, preceded in its transaction by the check of `fence` (none when None).
    A stale fence raises before anything is written; the store's savepoint rolls back
    whatever the operation wrote should the check ever come later."""
    if fence is None:
        return operation

    def checked(connection: sqlite3.Connection) -> T:
        check_fence(connection, fence)
        return operation(connection)

    return checked


class SqliteLeases:
    """`Leases` on SQLite."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def _times(self, ttl_seconds: float) -> tuple[str, str]:
        # Read on the event loop's side: a clock tied to trio (tests) cannot be read in the
        # store's thread.
        now = self._clock()
        return format_timestamp(now), format_timestamp(now + timedelta(seconds=ttl_seconds))

    async def acquire(
        self,
        name: str,
        owner: str,
        *,
        ttl_seconds: float,
        takeover: Callable[[str], bool] | None = None,
    ) -> Grant | None:
        now, expires = self._times(ttl_seconds)

        def write(connection: sqlite3.Connection) -> Grant | None:
            row = connection.execute(
                "SELECT owner, epoch, acquired_at, expires_at FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO leases (name, owner, epoch, acquired_at, expires_at) "
                    "VALUES (?, ?, 1, ?, ?)",
                    (name, owner, now, expires),
                )
                return Grant(fence=Fence(name=name, owner=owner, epoch=1), taken_from=None)
            current, epoch = str(row["owner"]), int(row["epoch"])
            live = str(row["expires_at"]) > now
            if live and current == owner:
                connection.execute(
                    "UPDATE leases SET expires_at = ? WHERE name = ?", (expires, name)
                )
                return Grant(fence=Fence(name=name, owner=owner, epoch=epoch), taken_from=None)
            if live and (takeover is None or not takeover(current)):
                return None
            # A release marks the row by expiring it at its acquisition time (see `release`):
            # taking a released lease is not a takeover.
            released = row["acquired_at"] == row["expires_at"]
            connection.execute(
                "UPDATE leases SET owner = ?, epoch = ?, acquired_at = ?, expires_at = ? "
                "WHERE name = ?",
                (owner, epoch + 1, now, expires, name),
            )
            return Grant(
                fence=Fence(name=name, owner=owner, epoch=epoch + 1),
                taken_from=None if released else current,
            )

        return await self._db.write(write)

    async def renew(self, fence: Fence, *, ttl_seconds: float) -> bool:
        _, expires = self._times(ttl_seconds)
        changed = await self._db.write(
            lambda c: (
                c.execute(
                    f"UPDATE leases SET expires_at = ? WHERE {_HOLDS}",
                    (expires, fence.name, fence.owner, fence.epoch),
                ).rowcount
            )
        )
        return changed == 1

    async def release(self, fence: Fence) -> None:
        now, _ = self._times(0)
        # Expired now, and stamped acquired_at = expires_at so the next holder can tell a
        # release from a lapse (its `Grant.taken_from`); owner and epoch stay.
        await self._db.write(
            lambda c: c.execute(
                f"UPDATE leases SET acquired_at = ?, expires_at = ? WHERE {_HOLDS}",
                (now, now, fence.name, fence.owner, fence.epoch),
            )
        )

    async def get(self, name: str) -> Lease | None:
        def read(connection: sqlite3.Connection) -> Lease | None:
            row = connection.execute("SELECT * FROM leases WHERE name = ?", (name,)).fetchone()
            return None if row is None else record(Lease, row)

        return await self._db.read(read)

    async def held(self) -> list[Lease]:
        now, _ = self._times(0)

        def read(connection: sqlite3.Connection) -> list[Lease]:
            rows = connection.execute(
                "SELECT * FROM leases WHERE expires_at > ? ORDER BY name", (now,)
            )
            return [record(Lease, row) for row in rows]

        return await self._db.read(read)
