"""The store conformance suite: every test here runs on SQLite and on PostgreSQL (the
`backend` fixture of tests/conftest.py).

A behaviour only one backend has is a defect of that backend, never a reason to skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from sidecar.clock import Clock
from sidecar.security.cipher import SecretCipher
from sidecar.store.interface import Store
from sidecar.store.postgres.store import PostgresStore
from sidecar.store.sqlite import SqliteStore
from tests.backends import Backend, dump_schema
from tests.harness import raw_database_bytes


@pytest.fixture
async def store(backend: Backend, cipher: SecretCipher, clock: Clock) -> AsyncIterator[Store]:
    opened = await backend.open(cipher=cipher, clock=clock)
    try:
        yield opened
    finally:
        await opened.aclose()


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
    return await trio.to_thread.run_sync(dump_schema, store.db.url, store.db.schema)
