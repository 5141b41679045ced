"""PostgreSQL migrations: the same versions as SQLite's, in our own schema, under a lock."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from sidecar.errors import MigrationError
from sidecar.security.cipher import AesGcmCipher
from sidecar.store.postgres.migrations import MIGRATIONS, migrate
from sidecar.store.postgres.store import PostgresStore, open_postgres_store
from sidecar.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from sidecar.store.sqlite import open_sqlite_store
from tests.backends import Backend
from tests.conftest import FakeClock
from tests.postgres import PostgresCluster, new_schema


def _tables(url: str, schema: str) -> list[tuple[str, str]]:
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = %s ORDER BY 1, 2",
            (schema,),
        ).fetchall()
    return [(str(table), str(column)) for table, column in rows]


def test_the_same_versions_as_sqlite() -> None:
    assert [(m.version, m.name) for m in MIGRATIONS] == [
        (m.version, m.name) for m in SQLITE_MIGRATIONS
    ]


async def test_the_same_tables_and_columns_as_sqlite(
    store: PostgresStore, backend: Backend, cipher: AesGcmCipher, tmp_path: Path
) -> None:
    # `store copy` moves every row column for column: a table or column on one backend
    # only would be lost, or refuse the copy.
    lite = await open_sqlite_store(tmp_path / "s.sqlite", cipher=cipher)
    try:
        sqlite_tables = await lite.db.read(
            lambda c: sorted(
                (str(table), str(column[1]))
                for (table,) in c.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                ).fetchall()
                for column in c.execute(f"PRAGMA table_info({table})").fetchall()
            )
        )
    finally:
        await lite.aclose()
    assert await trio.to_thread.run_sync(_tables, backend.url, backend.schema) == sqlite_tables


async def test_migrating_twice_gives_the_same_schema(
    store: PostgresStore, backend: Backend, cipher: AesGcmCipher, clock: FakeClock
) -> None:
    assert await store.schema_version() == len(MIGRATIONS)
    first = await trio.to_thread.run_sync(_tables, backend.url, backend.schema)
    again = await backend.open(cipher=cipher, clock=clock)
    await again.aclose()
    assert await trio.to_thread.run_sync(_tables, backend.url, backend.schema) == first
    assert {table for table, _ in first} >= {
        "installations",
        "installation_state",
        "inbound_outbox",
        "leases",
        "schema_migrations",
    }


async def test_processes_starting_together_migrate_once(
    postgres_server: PostgresCluster, cipher: AesGcmCipher
) -> None:
    schema = new_schema()
    stores: list[PostgresStore] = []

    async def start() -> None:
        stores.append(await open_postgres_store(postgres_server.url, schema=schema, cipher=cipher))

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(start)
    try:
        assert [await s.schema_version() for s in stores] == [len(MIGRATIONS)] * 4
    finally:
        for opened in stores:
            await opened.aclose()


async def test_a_newer_database_is_refused(
    store: PostgresStore, backend: Backend, cipher: AesGcmCipher
) -> None:
    with psycopg.connect(backend.url, autocommit=True) as connection:
        connection.execute(
            psycopg.sql.SQL(
                "INSERT INTO {}.schema_migrations VALUES (99, 'future', 'x', 'y')"
            ).format(psycopg.sql.Identifier(backend.schema))
        )
    with pytest.raises(MigrationError, match="schema version 99, newer than this build"):
        await open_postgres_store(backend.url, schema=backend.schema, cipher=cipher)


async def test_a_role_that_cannot_create_the_schema_is_told_how(
    postgres_server: PostgresCluster, cipher: AesGcmCipher
) -> None:
    role = f"weak_{new_schema()}"
    with psycopg.connect(postgres_server.url, autocommit=True) as connection:
        connection.execute(
            psycopg.sql.SQL("CREATE ROLE {} LOGIN").format(psycopg.sql.Identifier(role))
        )
        connection.execute(
            psycopg.sql.SQL("REVOKE CREATE ON DATABASE postgres FROM {}").format(
                psycopg.sql.Identifier(role)
            )
        )
    url = postgres_server.url.replace("postgres@", f"{role}@", 1)
    with pytest.raises(MigrationError, match="may not create schema"):
        await open_postgres_store(url, schema=new_schema(), cipher=cipher)


def test_the_run_outcomes_migration_keeps_runs_and_their_dead_letter_links(
    postgres_server: PostgresCluster,
) -> None:
    schema = new_schema()
    at = "2026-11-26T09:00:00.000Z"
    with psycopg.connect(postgres_server.url, row_factory=dict_row) as connection:
        connection.execute(
            psycopg.sql.SQL("SET search_path = {}").format(psycopg.sql.Identifier(schema))
        )
        migrate(connection, schema, at, MIGRATIONS[:3])
        connection.execute(
            "INSERT INTO installations (installation_id, status, created_at, updated_at) "
            "VALUES ('i', 'active', %s, %s)",
            (at, at),
        )
        connection.execute(
            "INSERT INTO sync_runs (id, installation_id, kind, status, started_at, owner) "
            "VALUES (7, 'i', 'full', 'failed', %s, 'host:1:a')",
            (at,),
        )
        connection.execute(
            "INSERT INTO rejected_items (installation_id, run_id, entity, target, item_json, "
            "reason, created_at) VALUES ('i', 7, 'customers', 'customers', '{}', 'bad', %s)",
            (at,),
        )
        connection.commit()

        assert migrate(connection, schema, at, MIGRATIONS[:4]) == [4]
        connection.commit()

        assert connection.execute("SELECT run_id FROM rejected_items").fetchall() == [{"run_id": 7}]
        assert connection.execute("SELECT id, status, owner FROM sync_runs").fetchall() == [
            {"id": 7, "status": "failed", "owner": "host:1:a"}
        ]
        for status in ("interrupted", "skipped"):
            connection.execute("UPDATE sync_runs SET status = %s WHERE id = 7", (status,))
        connection.commit()
        with pytest.raises(psycopg.errors.CheckViolation):
            connection.execute("UPDATE sync_runs SET status = 'bogus' WHERE id = 7")
        connection.rollback()
        connection.execute("DELETE FROM sync_runs")  # the link still works: set to NULL
        assert connection.execute("SELECT run_id FROM rejected_items").fetchall() == [
            {"run_id": None}
        ]
        connection.rollback()


def test_the_tallies_migration_counts_the_rows_already_there(
    postgres_server: PostgresCluster,
) -> None:
    schema = new_schema()
    with psycopg.connect(postgres_server.url, row_factory=dict_row) as connection:
        connection.execute(
            psycopg.sql.SQL("SET search_path = {}").format(psycopg.sql.Identifier(schema))
        )
        migrate(connection, schema, "t", MIGRATIONS[:6])
        connection.execute(
            "INSERT INTO installations (installation_id, status, created_at, updated_at) "
            "VALUES ('a', 'active', 't', 't')"
        )
        for n, status in enumerate(("queued", "delivered", "delivered", "dead", "failed")):
            connection.execute(
                "INSERT INTO inbound_events (id, installation_id, dedup_key, action, status, "
                "received_at) VALUES (%s, 'a', %s, 'sale', 'received', 't')",
                (n + 1, f"k{n}"),
            )
            connection.execute(
                "INSERT INTO inbound_outbox (event_id, installation_id, action, target, route, "
                "payload_json, idempotency_key, status, next_attempt_at, created_at, "
                "updated_at) VALUES (%s, 'a', 'sale', 't', 'r', '{}', %s, %s, 't', 't', 't')",
                (n + 1, f"i{n}", status),
            )
        connection.execute(
            "INSERT INTO rejected_items (installation_id, entity, target, item_json, reason, "
            "created_at) VALUES ('a', 'e', 't', '{}', 'bad', 't')"
        )
        assert migrate(connection, schema, "t", MIGRATIONS[:7]) == [7]
        tallies = connection.execute(
            "SELECT tally, installation_id, n FROM backlog_tallies ORDER BY tally"
        ).fetchall()
        connection.rollback()
    assert [(row["tally"], row["installation_id"], row["n"]) for row in tallies] == [
        ("dead_letter", "a", 1),
        ("outbox:dead", "a", 1),
        ("outbox:delivered", "a", 2),
        ("outbox:failed", "a", 1),
        ("outbox:queued", "a", 1),
    ]


async def test_the_lease_epochs_migration_keeps_the_leases_already_held(
    postgres_server: PostgresCluster, cipher: AesGcmCipher, clock: FakeClock
) -> None:
    schema = new_schema()
    with psycopg.connect(postgres_server.url, row_factory=dict_row) as connection:
        connection.execute(
            psycopg.sql.SQL("SET search_path = {}").format(psycopg.sql.Identifier(schema))
        )
        migrate(connection, schema, "t", MIGRATIONS[:7])
        connection.execute(
            "INSERT INTO leases (name, owner, acquired_at, expires_at) "
            "VALUES ('installation:i', 'host:1:a', '2026-11-26T08:59:00.000Z', "
            "'2026-11-26T09:00:30.000Z')"
        )
        connection.commit()
        assert migrate(connection, schema, "t", MIGRATIONS[:8]) == [8]
        connection.commit()
        assert connection.execute("SELECT name, owner, epoch FROM leases").fetchall() == [
            {"name": "installation:i", "owner": "host:1:a", "epoch": 0}
        ]
        connection.rollback()
    # The lease taken before the upgrade is still held, then taken over at epoch 1.
    store = await open_postgres_store(
        postgres_server.url, schema=schema, cipher=cipher, clock=clock
    )
    try:
        assert await store.schema_version() == MIGRATIONS[-1].version
        assert await store.leases.acquire("installation:i", "b/1", ttl_seconds=30) is None
        clock.advance(seconds=31)
        grant = await store.leases.acquire("installation:i", "b/1", ttl_seconds=30)
        assert grant is not None
        assert (grant.fence.epoch, grant.taken_from) == (1, "host:1:a")
    finally:
        await store.aclose()


async def test_the_claim_completion_migration_counts_existing_claims_completed(
    postgres_server: PostgresCluster, cipher: AesGcmCipher, clock: FakeClock
) -> None:
    schema = new_schema()
    with psycopg.connect(postgres_server.url, row_factory=dict_row) as connection:
        connection.execute(
            psycopg.sql.SQL("SET search_path = {}").format(psycopg.sql.Identifier(schema))
        )
        migrate(connection, schema, "t", MIGRATIONS[:9])
        connection.execute(
            "INSERT INTO webhook_claims (installation_id, dedup_key, claimed_at) "
            "VALUES ('i', 'sig', '2026-11-26T09:00:00.000Z')"
        )
        connection.commit()
        assert migrate(connection, schema, "t", MIGRATIONS[:10]) == [10]
        connection.commit()
        assert connection.execute(
            "SELECT completed_at, claimed_by FROM webhook_claims"
        ).fetchall() == [{"completed_at": "2026-11-26T09:00:00.000Z", "claimed_by": None}]
    # Processed before the upgrade: never retaken, however old.
    store = await open_postgres_store(
        postgres_server.url, schema=schema, cipher=cipher, clock=clock
    )
    try:
        assert not await store.webhook_claims.claim(
            "i", "sig", claimed_by="r", stale_after_seconds=0
        )
        assert await store.webhook_claims.claim("i", "other", claimed_by="r", stale_after_seconds=0)
    finally:
        await store.aclose()
