"""`check` on PostgreSQL: the server answers, is recent enough, and our role may use (or
create) our schema. Reads only: nothing is created or migrated here."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import trio

from sidecar.errors import StoreError
from sidecar.postgres_url import redact_text
from sidecar.store.postgres.database import CONNECT_TIMEOUT_SECONDS
from sidecar.store.postgres.migrations import MIGRATIONS

__all__ = ["MINIMUM_SERVER_VERSION", "ServerReport", "check_server"]

MINIMUM_SERVER_VERSION = 130000
"""PostgreSQL 13: the oldest version the store is tested against."""


@dataclass(frozen=True, slots=True)
class ServerReport:
    """What `check` prints about the server."""

    version: str
    schema_exists: bool
    schema_version: int


def _check(url: str, schema: str, connect_seconds: int) -> ServerReport:
    try:
        with psycopg.connect(url, connect_timeout=connect_seconds, autocommit=True) as connection:
            return _inspect(connection, schema)
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"PostgreSQL: cannot connect ({redact_text(first, url)})") from exc


def _inspect(connection: psycopg.Connection[tuple[object, ...]], schema: str) -> ServerReport:
    number, version = connection.execute(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version')"
    ).fetchone() or (0, "")
    if int(str(number)) < MINIMUM_SERVER_VERSION:
        raise StoreError(f"PostgreSQL {version} is too old; the store needs PostgreSQL 13 or newer")
    row = connection.execute(
        "SELECT has_schema_privilege(%s, 'CREATE') AND has_schema_privilege(%s, 'USAGE') "
        "FROM pg_namespace WHERE nspname = %s",
        (schema, schema, schema),
    ).fetchone()
    if row is None:
        allowed = connection.execute(
            "SELECT has_database_privilege(current_database(), 'CREATE')"
        ).fetchone()
        if not (allowed and allowed[0]):
            raise StoreError(
                f"PostgreSQL: the role {_role(connection)} may not create schema {schema!r}; "
                f"grant it CREATE on the database or run CREATE SCHEMA {schema} AUTHORIZATION "
                f"{_role(connection)}"
            )
        return ServerReport(str(version), schema_exists=False, schema_version=0)
    if not row[0]:
        raise StoreError(
            f"PostgreSQL: the role {_role(connection)} may not create tables in schema "
            f"{schema!r}; grant it USAGE and CREATE on that schema"
        )
    applied = connection.execute(
        "SELECT to_regclass(format('%%I.schema_migrations', %s::text)) IS NOT NULL", (schema,)
    ).fetchone()
    current = 0
    if applied and applied[0]:
        found = connection.execute(
            psycopg.sql.SQL("SELECT COALESCE(MAX(version), 0) FROM {}.schema_migrations").format(
                psycopg.sql.Identifier(schema)
            )
        ).fetchone()
        current = int(str(found[0])) if found else 0
    if current > len(MIGRATIONS):
        raise StoreError(
            f"the database has schema version {current}, newer than this build knows "
            f"({len(MIGRATIONS)}); run a newer shopimind-sidecar"
        )
    return ServerReport(str(version), schema_exists=True, schema_version=current)


def _role(connection: psycopg.Connection[tuple[object, ...]]) -> str:
    row = connection.execute("SELECT current_user").fetchone()
    return str(row[0]) if row else "?"


async def check_server(
    url: str, schema: str, *, connect_seconds: int = CONNECT_TIMEOUT_SECONDS
) -> ServerReport:
    """Connect once and report; raise StoreError (one line, no password) on any problem."""
    return await trio.to_thread.run_sync(_check, url, schema, connect_seconds)
