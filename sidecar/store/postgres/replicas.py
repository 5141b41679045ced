"""The replicas table on PostgreSQL: each process sharing the database, and its heartbeats.

With `database_clock` (a store opened on the system clock) every instant is the server's
`clock_timestamp()`, as for the leases: hosts whose clocks disagree still agree on who is
alive. A test's own clock keeps the instants on its time instead.
"""

from __future__ import annotations

import builtins
from datetime import timedelta
from typing import Final

from sidecar.clock import Clock, format_timestamp
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.postgres.leases import DATABASE_NOW
from sidecar.store.records import Replica, ReplicaRegistration
from sidecar.store.sqlite.replicas import LIST_REPLICAS_SQL

__all__ = ["PostgresReplicas"]

_FORMAT: Final = """'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"""
_DATABASE_UNTIL: Final = (
    "to_char((clock_timestamp() + make_interval(secs => {seconds})) AT TIME ZONE 'UTC', "
    f"{_FORMAT})"
)


class PostgresReplicas:
    """`Replicas` on PostgreSQL."""

    def __init__(self, db: Database, clock: Clock, *, database_clock: bool) -> None:
        self._db = db
        self._clock = clock
        self._database_clock = database_clock

    def _now(self) -> tuple[str, dict[str, object]]:
        """SQL for now, and its parameters."""
        if self._database_clock:
            return DATABASE_NOW, {}
        return "%(now)s", {"now": format_timestamp(self._clock())}

    def _until(self, seconds_sql: str, seconds: float) -> tuple[str, dict[str, object]]:
        """SQL for now + the alive window: `seconds_sql` (a column or a parameter) on the
        server's clock, else `seconds` on the store's clock."""
        if self._database_clock:
            return _DATABASE_UNTIL.format(seconds=seconds_sql), {}
        until = self._clock() + timedelta(seconds=seconds)
        return "%(until)s", {"until": format_timestamp(until)}

    async def register(self, replica: ReplicaRegistration) -> None:
        now, params = self._now()
        until, more = self._until("%(seconds)s", replica.alive_seconds)
        values = {
            **params,
            **more,
            "id": replica.id,
            "version": replica.version,
            "host": replica.host,
            "pid": replica.pid,
            "seconds": float(replica.alive_seconds),
        }
        await self._db.write(
            lambda c: c.execute(
                "INSERT INTO replicas (id, version, host, pid, alive_seconds, started_at, "
                "heartbeat_at, alive_until, stopped_at) VALUES (%(id)s, %(version)s, "
                f"%(host)s, %(pid)s, %(seconds)s, {now}, {now}, {until}, NULL) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
                "host = excluded.host, pid = excluded.pid, "
                "alive_seconds = excluded.alive_seconds, started_at = excluded.started_at, "
                "heartbeat_at = excluded.heartbeat_at, alive_until = excluded.alive_until, "
                "stopped_at = NULL",
                values,
            )
        )

    async def heartbeat(self, replica_id: str) -> bool:
        now, params = self._now()

        def write(connection: Connection) -> bool:
            row = connection.execute(
                "SELECT alive_seconds FROM replicas "
                "WHERE id = %(id)s AND stopped_at IS NULL FOR UPDATE",
                {"id": replica_id},
            ).fetchone()
            if row is None:
                return False
            until, more = self._until("alive_seconds", float(row["alive_seconds"]))
            connection.execute(
                f"UPDATE replicas SET heartbeat_at = {now}, alive_until = {until} "
                "WHERE id = %(id)s",
                {**params, **more, "id": replica_id},
            )
            return True

        return await self._db.write(write)

    async def stopped(self, replica_id: str) -> None:
        now, params = self._now()
        await self._db.write(
            lambda c: c.execute(
                f"UPDATE replicas SET stopped_at = {now}, alive_until = {now} "
                "WHERE id = %(id)s AND stopped_at IS NULL",
                {**params, "id": replica_id},
            )
        )

    async def list(self) -> builtins.list[Replica]:
        now, params = self._now()
        query = LIST_REPLICAS_SQL.format(now=now)

        def read(connection: Connection) -> builtins.list[Replica]:
            rows = connection.execute(query, params).fetchall()
            return [
                Replica(
                    id=str(row["id"]),
                    version=str(row["version"]),
                    host=str(row["host"]),
                    pid=int(row["pid"]),
                    started_at=str(row["started_at"]),
                    heartbeat_at=str(row["heartbeat_at"]),
                    stopped_at=None if row["stopped_at"] is None else str(row["stopped_at"]),
                    alive=bool(row["alive"]),
                    leases_held=int(row["leases_held"]),
                )
                for row in rows
            ]

        return await self._db.read(read)
