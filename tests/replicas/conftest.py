"""Fixtures of the multi-process tests: one fresh PostgreSQL schema per test, on the
session's server (tests/postgres.py). Without PostgreSQL they are set aside with one line;
with SIDECAR_REQUIRE_POSTGRES=1 they fail instead."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.postgres import PostgresCluster, new_schema


@dataclass(frozen=True)
class Database:
    """Where the replicas of one test keep their state."""

    url: str
    schema: str


@pytest.fixture
def database(postgres_server: PostgresCluster) -> Database:
    """A schema of its own on the session's PostgreSQL server."""
    return Database(url=postgres_server.url, schema=new_schema())
