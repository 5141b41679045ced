"""`store copy`: move a deployment from its SQLite file to PostgreSQL, rows unchanged.

Every row is copied as it is stored — encrypted values included, so the same
CREDENTIALS_KEY reads them on the other side. The whole copy is ONE PostgreSQL
transaction: an interrupted copy (a crash, Ctrl-C, a lost connection) leaves the target
as empty as it was, so running the command again is always safe. Before committing, the
row count of every table is compared with the source's; a difference rolls everything
back. A target that already holds data is refused: the copy never merges.

The SQLite file is read through a read-only connection; stop the sidecar first, so that
nothing is written to the file while it is copied (README, "Outgrowing one host").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg
import trio
from psycopg import sql
from psycopg.rows import dict_row

from sidecar.errors import StoreError
from sidecar.postgres_url import redact_text
from sidecar.sqlite_file import is_sqlite_file
from sidecar.store.postgres.database import CONNECT_TIMEOUT_SECONDS, Connection
from sidecar.store.postgres.migrations import MIGRATIONS, advisory_lock_key, migrate

__all__ = ["TABLES", "CopyReport", "copy_store"]

TABLES: Final = (
    "installations",
    "installation_state",
    "webhook_log",
    "webhook_claims",
    "sync_cursors",
    "sync_runs",
    "sync_resume_points",
    "leases",
    "inbound_events",
    "inbound_outbox",
    "rejected_items",
    "audit_log",
    "replicas",
)
"""Every table of the store, parents before children (foreign keys hold at each insert)."""
_DERIVED: Final = ("backlog_tallies",)
"""Tables that triggers keep on both backends (migration 7): filled on the target as the
rows they count are copied, then compared with the source's, never copied themselves."""
_IDENTITY: Final = ("webhook_log", "sync_runs", "inbound_events", "rejected_items", "audit_log")
_CHUNK_ROWS: Final = 5_000

Progress = Callable[[str, int, int], None]
"""Called as rows go: (table, rows copied so far, rows in the table)."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    """Rows copied per table (equal on both sides: verified before the commit)."""

    counts: dict[str, int]
    schema_version: int


def _source(path: Path) -> sqlite3.Connection:
    if not path.is_file() or not is_sqlite_file(path):
        raise StoreError(f"DATABASE_PATH: {path} is not an SQLite database (nothing to copy)")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version != len(MIGRATIONS):
        connection.close()
        raise StoreError(
            f"{path} has schema version {version} and this build {len(MIGRATIONS)}: run "
            "`shopimind-sidecar migrate` on it with this build first"
        )
    tables = {
        str(row[0])
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    } - {"schema_migrations"}
    unknown = tables - set(TABLES) - set(_DERIVED)
    if unknown:
        connection.close()
        raise StoreError(f"store copy does not know the tables {sorted(unknown)}; upgrade it")
    return connection


def _copy(path: Path, url: str, schema: str, applied_at: str, progress: Progress) -> CopyReport:
    source = _source(path)
    try:
        with psycopg.connect(
            url, connect_timeout=CONNECT_TIMEOUT_SECONDS, row_factory=dict_row
        ) as target:
            target.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
            migrate(target, schema, applied_at)
            target.commit()
            # The copy holds the schema's migration lock: a sidecar starting on the target
            # meanwhile waits for the copy to commit or roll back.
            target.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_lock_key(schema),))
            counts = _copy_tables(source, target, progress)
            target.commit()
            return CopyReport(counts=counts, schema_version=len(MIGRATIONS))
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"PostgreSQL: {redact_text(first, url)}") from exc
    finally:
        source.close()


def _copy_tables(
    source: sqlite3.Connection, target: Connection, progress: Progress
) -> dict[str, int]:
    for table in (*TABLES, *_DERIVED):
        row = target.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {}) AS held").format(sql.Identifier(table))
        ).fetchone()
        if row and row["held"]:
            raise StoreError(
                f"the target already holds data (table {table}); store copy only fills an "
                "empty store (use a new DATABASE_SCHEMA, or empty this one)"
            )
    counts: dict[str, int] = {}
    for table in TABLES:
        columns = [str(c[1]) for c in source.execute(f"PRAGMA table_info({table})")]
        total = int(source.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        done = 0
        progress(table, 0, total)
        rows = source.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid")
        with target.cursor().copy(statement) as copy:
            while chunk := rows.fetchmany(_CHUNK_ROWS):
                for values in chunk:
                    copy.write_row(values)
                done += len(chunk)
                progress(table, done, total)
        counted = target.execute(
            sql.SQL("SELECT COUNT(*) AS n FROM {}").format(sql.Identifier(table))
        ).fetchone()
        copied = int(counted["n"]) if counted else -1
        if copied != total:
            raise StoreError(
                f"table {table}: {total} rows in SQLite but {copied} in PostgreSQL; "
                "nothing was committed"
            )
        counts[table] = copied
    for table in _DERIVED:
        _compare_derived(source, target, table)
    for table in _IDENTITY:
        # The next id continues after the copied ones.
        target.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({table}, 'id'), "
                "COALESCE((SELECT MAX(id) FROM {ident}), 0) + 1, false)"
            ).format(table=sql.Literal(table), ident=sql.Identifier(table))
        )
    return counts


def _compare_derived(source: sqlite3.Connection, target: Connection, table: str) -> None:
    """The rows the target's triggers made for `table`, checked equal to the source's."""
    columns = [str(c[1]) for c in source.execute(f"PRAGMA table_info({table})")]
    listed = ", ".join(columns)
    expected = sorted(source.execute(f"SELECT {listed} FROM {table}").fetchall())
    made = sorted(
        tuple(row.values())
        for row in target.execute(
            sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
            )
        )
    )
    if made != expected:
        raise StoreError(
            f"table {table}: the copied rows do not add up to the source's ({len(expected)} "
            f"rows in SQLite, {len(made)} made in PostgreSQL); nothing was committed"
        )


async def copy_store(
    path: Path, url: str, *, schema: str, applied_at: str, progress: Progress
) -> CopyReport:
    """Copy the SQLite store at `path` into `schema` at `url` (one transaction)."""
    return await trio.to_thread.run_sync(_copy, path, url, schema, applied_at, progress)
