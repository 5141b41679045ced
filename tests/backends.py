"""The two store backends as the tests see them: where a test's store lives, how a real
process is pointed at it, and what an attacker holding the database would read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from sidecar.clock import Clock, system_clock
from sidecar.security.cipher import SecretCipher
from sidecar.store.postgres.store import open_postgres_store
from sidecar.store.sqlite import open_sqlite_store

__all__ = ["Backend", "dump_schema"]


@dataclass(frozen=True)
class Backend:
    """Where a test's store lives: an SQLite file, or a fresh schema on the test server."""

    name: str
    path: Path
    url: str = ""
    schema: str = ""

    async def open(self, *, cipher: SecretCipher, clock: Clock = system_clock) -> Any:
        """Open (again) this test's store; the same data each time."""
        if self.name == "sqlite":
            return await open_sqlite_store(self.path, cipher=cipher, clock=clock)
        return await open_postgres_store(self.url, schema=self.schema, cipher=cipher, clock=clock)

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """A process environment pointed at this store instead of `env`'s DATABASE_PATH."""
        if self.name == "sqlite":
            return env | {"DATABASE_PATH": str(self.path)}
        rest = {k: v for k, v in env.items() if k != "DATABASE_PATH"}
        return rest | {"DATABASE_URL": self.url, "DATABASE_SCHEMA": self.schema}

    def dump(self) -> bytes:
        """Everything stored, as bytes: the SQLite files, or every row of the schema."""
        if self.name == "sqlite":
            from tests.harness import raw_database_bytes  # harness imports conftest

            return raw_database_bytes(self.path)
        return dump_schema(self.url, self.schema)


def dump_schema(url: str, schema: str) -> bytes:
    """Every row of every table of `schema`, as text (a dump of the tables)."""
    blob = bytearray()
    with psycopg.connect(url, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
        ).fetchall()
        for (table,) in tables:
            query = sql.SQL("SELECT t::text FROM {}.{} AS t").format(
                sql.Identifier(schema), sql.Identifier(str(table))
            )
            for (row,) in connection.execute(query):
                blob += f"{table}: {row}\n".encode()
    return bytes(blob)
