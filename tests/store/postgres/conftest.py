"""Tests of the PostgreSQL adapter's own machinery (pool, cancellation, migrations, the
server going away): the store fixture here is PostgreSQL only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends import Backend
from tests.postgres import PostgresCluster, new_schema


@pytest.fixture
def backend(postgres_server: PostgresCluster, tmp_path: Path) -> Backend:
    return Backend("postgres", tmp_path / "unused", url=postgres_server.url, schema=new_schema())
