"""Versioned, append-only migrations recorded in the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sidecar.errors import MigrationError
from sidecar.store.sqlite import MIGRATIONS, Migration, open_sqlite_store
from sidecar.store.sqlite.migrations import migrate


def schema(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()


async def test_migrating_twice_gives_the_same_schema(tmp_path: Path, cipher) -> None:
    path = tmp_path / "m.sqlite"
    store = await open_sqlite_store(path, cipher=cipher)
    await store.aclose()
    first = schema(path)
    store = await open_sqlite_store(path, cipher=cipher)
    assert await store.schema_version() == len(MIGRATIONS)
    await store.aclose()
    assert schema(path) == first
    tables = {name for kind, name, _ in first if kind == "table"}
    assert tables >= {
        "installations",
        "installation_state",
        "webhook_log",
        "webhook_claims",
        "sync_cursors",
        "sync_runs",
        "inbound_events",
        "rejected_items",
        "audit_log",
        "schema_migrations",
    }
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert rows == [(m.version, m.name) for m in MIGRATIONS]


def test_versions_are_contiguous_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def _connection(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_an_edited_migration_is_detected(tmp_path: Path) -> None:
    connection = _connection(tmp_path / "e.sqlite")
    original = (Migration(1, "one", ("CREATE TABLE a (x INTEGER)",)),)
    assert migrate(connection, "2026-11-26T09:00:00.000Z", original) == [1]
    # Layout changes are harmless…
    relaid = (Migration(1, "one", ("CREATE TABLE a\n    (x   INTEGER)",)),)
    assert migrate(connection, "2026-11-26T09:00:00.000Z", relaid) == []
    # …but a change of meaning is refused.
    edited = (Migration(1, "one", ("CREATE TABLE a (x TEXT)",)),)
    with pytest.raises(MigrationError, match="append-only"):
        migrate(connection, "2026-11-26T09:00:00.000Z", edited)


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    connection = _connection(tmp_path / "n.sqlite")
    two = (
        Migration(1, "one", ("CREATE TABLE a (x INTEGER)",)),
        Migration(2, "two", ("CREATE TABLE b (x INTEGER)",)),
    )
    migrate(connection, "2026-11-26T09:00:00.000Z", two)
    with pytest.raises(MigrationError, match="newer than this build knows"):
        migrate(connection, "2026-11-26T09:00:00.000Z", two[:1])


def test_new_migrations_apply_in_order(tmp_path: Path) -> None:
    connection = _connection(tmp_path / "o.sqlite")
    one = (Migration(1, "one", ("CREATE TABLE a (x INTEGER)",)),)
    migrate(connection, "2026-11-26T09:00:00.000Z", one)
    two = (*one, Migration(2, "two", ("ALTER TABLE a ADD COLUMN y TEXT",)))
    assert migrate(connection, "2026-11-26T09:00:00.000Z", two) == [2]
    assert connection.execute("PRAGMA user_version").fetchone()[0] == 2


def test_gaps_in_versions_are_a_programming_error(tmp_path: Path) -> None:
    connection = _connection(tmp_path / "g.sqlite")
    with pytest.raises(MigrationError, match="1, 2, 3"):
        migrate(connection, "2026-11-26T09:00:00.000Z", (Migration(2, "two", ("SELECT 1",)),))


def test_the_run_outcomes_migration_keeps_runs_and_their_dead_letter_links(
    tmp_path: Path,
) -> None:
    connection = _connection(tmp_path / "r.sqlite")
    connection.execute("PRAGMA foreign_keys = ON")  # as the store runs it
    at = "2026-11-26T09:00:00.000Z"
    connection.execute("BEGIN IMMEDIATE")
    migrate(connection, at, MIGRATIONS[:3])
    connection.execute(
        "INSERT INTO installations (installation_id, status, created_at, updated_at) "
        "VALUES ('i', 'active', ?, ?)",
        (at, at),
    )
    connection.execute(
        "INSERT INTO sync_runs (id, installation_id, kind, status, started_at, owner) "
        "VALUES (7, 'i', 'full', 'failed', ?, 'host:1:a')",
        (at,),
    )
    connection.execute(
        "INSERT INTO rejected_items (installation_id, run_id, entity, target, item_json, "
        "reason, created_at) VALUES ('i', 7, 'customers', 'customers', '{}', 'bad', ?)",
        (at,),
    )
    connection.execute("COMMIT")

    connection.execute("BEGIN IMMEDIATE")
    assert migrate(connection, at, MIGRATIONS[:4]) == [4]
    connection.execute("COMMIT")

    assert connection.execute("SELECT run_id FROM rejected_items").fetchall() == [(7,)]
    assert connection.execute("SELECT id, status, owner FROM sync_runs").fetchall() == [
        (7, "failed", "host:1:a")
    ]
    for status in ("interrupted", "skipped"):
        connection.execute("UPDATE sync_runs SET status = ? WHERE id = 7", (status,))
    with pytest.raises(sqlite3.IntegrityError):
        connection.execute("UPDATE sync_runs SET status = 'bogus' WHERE id = 7")
    assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    connection.execute("DELETE FROM sync_runs")  # the link still works: set to NULL
    assert connection.execute("SELECT run_id FROM rejected_items").fetchall() == [(None,)]


def test_the_claim_completion_migration_counts_existing_claims_completed(
    tmp_path: Path,
) -> None:
    connection = _connection(tmp_path / "c.sqlite")
    at = "2026-11-26T09:00:00.000Z"
    connection.execute("BEGIN IMMEDIATE")
    migrate(connection, at, MIGRATIONS[:9])
    connection.execute(
        "INSERT INTO webhook_claims (installation_id, dedup_key, claimed_at) "
        "VALUES ('i', 'sig', ?)",
        (at,),
    )
    connection.execute("COMMIT")
    connection.execute("BEGIN IMMEDIATE")
    assert migrate(connection, at, MIGRATIONS[:10]) == [10]
    connection.execute("COMMIT")
    assert connection.execute(
        "SELECT installation_id, dedup_key, claimed_at, completed_at, claimed_by "
        "FROM webhook_claims"
    ).fetchall() == [("i", "sig", at, at, None)]  # completed, claimer unknown
    connection.execute(
        "INSERT INTO webhook_claims (installation_id, dedup_key, claimed_at) "
        "VALUES ('i', 'new', ?)",
        (at,),
    )
    assert connection.execute(
        "SELECT completed_at FROM webhook_claims WHERE dedup_key = 'new'"
    ).fetchall() == [(None,)]  # a new claim starts uncompleted
