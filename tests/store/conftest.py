"""The store conformance suite: every test here runs on SQLite and on PostgreSQL.

A behaviour only one backend has is a defect of that backend, never a reason to skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sidecar.clock import Clock
from sidecar.security.cipher import SecretCipher
from sidecar.store.interface import Store
from sidecar.store.postgres.store import PostgresStore, open_postgres_store
from sidecar.store.sqlite import SqliteStore, open_sqlite_store
from tests.harness import raw_database_bytes
from tests.postgres import PostgresCluster, new_schema


@dataclass(frozen=True)
class Backend:
    """Where a test's store lives: an SQLite file, or a fresh schema on the test server."""

    name: str
    path: Path
    url: str = ""
    schema: str = ""

    async def open(self, *, cipher: SecretCipher, clock: Clock) -> Any:
        """Open (again) this test's store; the same data each time."""
        if self.name == "sqlite":
            return await open_sqlite_store(self.path, cipher=cipher, clock=clock)
        return await open_postgres_store(self.url, schema=self.schema, cipher=cipher, clock=clock)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path / "store.sqlite")
    cluster: PostgresCluster = request.getfixturevalue("postgres_server")
    return Backend("postgres", tmp_path / "unused", url=cluster.url, schema=new_schema())


async def execute(store: Any, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Run one statement (written with `?` placeholders) in a write transaction of `store`,
    behind the store's back; return its rows. For tests that tamper with stored rows."""
    if isinstance(store, SqliteStore):
        return await store.db.write(
            lambda c: [tuple(row) for row in c.execute(sql, params).fetchall()]
        )
    assert isinstance(store, PostgresStore)

    def run(connection: Any) -> list[tuple[Any, ...]]:
        cursor = connection.execute(sql.replace("?", "%s"), params)
        return [tuple(row.values()) for row in cursor.fetchall()] if cursor.description else []

    return await store.db.write(run)


async def dump(store: Any) -> bytes:
    """Everything the store holds, as an attacker with the database would see it: the SQLite
    files on disk, or every row of every table of the PostgreSQL schema as text."""
    if isinstance(store, SqliteStore):
        return raw_database_bytes(store.path)
    assert isinstance(store, PostgresStore)

    def read(connection: Any) -> bytes:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        ).fetchall()
        blob = bytearray()
        for table in tables:
            name = table["tablename"]
            for row in connection.execute(f'SELECT t::text AS r FROM "{name}" AS t'):
                blob += f"{name}: {row['r']}\n".encode()
        return bytes(blob)

    return await store.db.read(read)


OpenStore = Callable[..., Awaitable[Any]]


@pytest.fixture
async def store(backend: Backend, cipher: SecretCipher, clock: Clock) -> AsyncIterator[Store]:
    opened = await backend.open(cipher=cipher, clock=clock)
    try:
        yield opened
    finally:
        await opened.aclose()
