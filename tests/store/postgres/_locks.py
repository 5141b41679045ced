"""What the tests of leases on PostgreSQL need to see inside the server: who waits for a
lock, and a barrier that releases several racing transactions at once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import trio
from psycopg import sql

__all__ = ["lock_waiters", "table_barrier", "wait_for_lock_waiters"]

_WAIT_SECONDS = 20.0
_POLL_SECONDS = 0.01


def lock_waiters(url: str, schema: str, table: str) -> int:
    """How many sessions wait for a lock on `schema.table` (a row's or the table's)."""
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(DISTINCT a.pid) FROM pg_stat_activity AS a "
            "JOIN pg_locks AS l ON l.pid = a.pid AND NOT l.granted "
            "WHERE a.wait_event_type = 'Lock' AND (l.relation = %s::regclass "
            "OR l.locktype IN ('transactionid', 'tuple') AND a.query ILIKE %s)",
            (f"{schema}.{table}", f"%{table}%"),
        ).fetchone()
    return 0 if row is None else int(row[0])


def wait_for_lock_waiters(url: str, schema: str, table: str, count: int) -> None:
    """Block (in a thread) until `count` sessions wait for a lock on `table`. The server
    cannot tell us when a query starts waiting: look until it does."""
    deadline = time.monotonic() + _WAIT_SECONDS
    while time.monotonic() < deadline:
        if lock_waiters(url, schema, table) >= count:
            return
        time.sleep(_POLL_SECONDS)
    raise AssertionError(f"{count} sessions never came to wait for a lock on {table}")


@asynccontextmanager
async def table_barrier(url: str, schema: str, table: str) -> AsyncIterator[None]:
    """Hold `table` in EXCLUSIVE mode until the block ends: every reader that locks rows
    and every writer of the table queues up behind it, and all go at once when it ends."""

    def lock() -> psycopg.Connection[tuple[object, ...]]:
        connection = psycopg.connect(url)
        connection.execute(
            sql.SQL("LOCK TABLE {}.{} IN EXCLUSIVE MODE").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        )
        return connection

    def unlock(connection: psycopg.Connection[tuple[object, ...]]) -> None:
        connection.commit()
        connection.close()

    connection = await trio.to_thread.run_sync(lock)
    try:
        yield
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(unlock, connection)
