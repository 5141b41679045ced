"""The command line with DATABASE_URL, as real subprocesses against the test server."""

from __future__ import annotations

import socket

import pytest

from sidecar.store.postgres.migrations import MIGRATIONS
from tests.postgres import PostgresCluster, new_schema
from tests.test_cli import run

PASSWORD = "Pa55-in-the-URL"  # the test server trusts loopback: any password is accepted


@pytest.fixture
def pg_env(valid_env: dict[str, str], postgres_server: PostgresCluster) -> dict[str, str]:
    env = {k: v for k, v in valid_env.items() if k != "DATABASE_PATH"}
    url = postgres_server.url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    return env | {"DATABASE_URL": url, "DATABASE_SCHEMA": new_schema()}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_check_connects_and_reports_the_server(pg_env: dict[str, str]) -> None:
    result = run(pg_env, "check")
    assert result.returncode == 0, result.stderr
    assert "postgresql       server " in result.stdout
    assert "schema to be created at the first start" in result.stdout
    assert "postgres:***@127.0.0.1" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    migrated = run(pg_env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema version {len(MIGRATIONS)}" in migrated.stdout
    assert PASSWORD not in migrated.stdout + migrated.stderr
    again = run(pg_env, "check")
    assert f"schema version {len(MIGRATIONS)}" in again.stdout


def test_server_down_check_exits_2_and_serve_fails_with_one_line(
    pg_env: dict[str, str],
) -> None:
    env = pg_env | {"DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:{_closed_port()}/db"}
    result = run(env, "check")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("DATABASE_URL: PostgreSQL: cannot connect")
    assert PASSWORD not in result.stdout + result.stderr
    served = run(env | {"PORT": "0", "LOG_FORMAT": "text"}, "serve")
    assert served.returncode != 0
    errors = [line for line in served.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "PostgreSQL: cannot connect" in errors[0]
    assert "Traceback" not in served.stderr
    assert PASSWORD not in served.stdout + served.stderr


def test_check_refuses_a_role_that_cannot_create_the_schema(
    pg_env: dict[str, str], postgres_server: PostgresCluster
) -> None:
    import psycopg
    from psycopg import sql

    role = f"weak_{new_schema()}"
    with psycopg.connect(postgres_server.url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        connection.execute(
            sql.SQL("REVOKE CREATE ON DATABASE postgres FROM {}").format(sql.Identifier(role))
        )
    env = pg_env | {"DATABASE_URL": postgres_server.url.replace("postgres@", f"{role}@", 1)}
    result = run(env, "check")
    assert result.returncode == 2
    assert "may not create schema" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_backup_on_postgresql_names_pg_dump(pg_env: dict[str, str], tmp_path) -> None:
    result = run(pg_env, "backup", str(tmp_path / "copy.sqlite"))
    assert result.returncode == 2
    assert "pg_dump" in result.stderr
    assert not (tmp_path / "copy.sqlite").exists()
    assert PASSWORD not in result.stdout + result.stderr
