"""The replicas table: each process sharing the database, and its heartbeats.

On SQLite the store's clock is the database's clock (one host). A replica is alive while
it has not stopped and its last heartbeat is younger than its `alive_seconds`; the leases
it holds are read from the leases table, by holder (`<replica id>/<tag>`).
"""

from __future__ import annotations

import builtins
import sqlite3
from datetime import timedelta
from typing import Final

from sidecar.clock import Clock, format_timestamp
from sidecar.store.records import Replica, ReplicaRegistration
from sidecar.store.sqlite.database import Database

__all__ = ["LIST_REPLICAS_SQL", "SqliteReplicas"]

LIST_REPLICAS_SQL: Final = """
    SELECT r.id, r.version, r.host, r.pid, r.started_at, r.heartbeat_at, r.stopped_at,
           (r.stopped_at IS NULL AND r.alive_until > {now}) AS alive,
           (SELECT COUNT(*) FROM leases AS l
             WHERE l.expires_at > {now}
               AND (l.owner = r.id OR substr(l.owner, 1, length(r.id) + 1) = r.id || '/')
           ) AS leases_held
      FROM replicas AS r
     ORDER BY alive DESC, r.id"""
"""Every replica, alive first; `{now}` is the database's now (SQL or a parameter).
The holder's prefix is compared with `substr`, not LIKE: `_` is a LIKE wildcard."""


class SqliteReplicas:
    """`Replicas` on SQLite."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def register(self, replica: ReplicaRegistration) -> None:
        moment = self._clock()
        now = format_timestamp(moment)
        until = format_timestamp(moment + timedelta(seconds=replica.alive_seconds))
        await self._db.write(
            lambda c: c.execute(
                "INSERT INTO replicas (id, version, host, pid, alive_seconds, started_at, "
                "heartbeat_at, alive_until, stopped_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
                "host = excluded.host, pid = excluded.pid, "
                "alive_seconds = excluded.alive_seconds, started_at = excluded.started_at, "
                "heartbeat_at = excluded.heartbeat_at, alive_until = excluded.alive_until, "
                "stopped_at = NULL",
                (
                    replica.id,
                    replica.version,
                    replica.host,
                    replica.pid,
                    float(replica.alive_seconds),
                    now,
                    now,
                    until,
                ),
            )
        )

    async def heartbeat(self, replica_id: str) -> bool:
        moment = self._clock()

        def write(connection: sqlite3.Connection) -> bool:
            row = connection.execute(
                "SELECT alive_seconds FROM replicas WHERE id = ? AND stopped_at IS NULL",
                (replica_id,),
            ).fetchone()
            if row is None:
                return False
            until = moment + timedelta(seconds=float(row["alive_seconds"]))
            connection.execute(
                "UPDATE replicas SET heartbeat_at = ?, alive_until = ? WHERE id = ?",
                (format_timestamp(moment), format_timestamp(until), replica_id),
            )
            return True

        return await self._db.write(write)

    async def stopped(self, replica_id: str) -> None:
        now = format_timestamp(self._clock())
        await self._db.write(
            lambda c: c.execute(
                "UPDATE replicas SET stopped_at = ?, alive_until = ? "
                "WHERE id = ? AND stopped_at IS NULL",
                (now, now, replica_id),
            )
        )

    async def list(self) -> builtins.list[Replica]:
        now = format_timestamp(self._clock())

        def read(connection: sqlite3.Connection) -> builtins.list[Replica]:
            rows = connection.execute(LIST_REPLICAS_SQL.format(now=":now"), {"now": now})
            return [_replica(dict(row)) for row in rows]

        return await self._db.read(read)


def _replica(row: dict[str, object]) -> Replica:
    return Replica(
        id=str(row["id"]),
        version=str(row["version"]),
        host=str(row["host"]),
        pid=int(row["pid"]),  # type: ignore[call-overload]
        started_at=str(row["started_at"]),
        heartbeat_at=str(row["heartbeat_at"]),
        stopped_at=None if row["stopped_at"] is None else str(row["stopped_at"]),
        alive=bool(row["alive"]),
        leases_held=int(row["leases_held"]),  # type: ignore[call-overload]
    )
