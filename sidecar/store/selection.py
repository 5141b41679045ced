"""Which store to open: PostgreSQL when a DATABASE_URL is given, else the SQLite file.

The one place that knows both adapters; everything else holds a `Store`. PostgreSQL's
driver is imported only when it is selected, so an SQLite deployment never loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sidecar.clock import Clock
from sidecar.security.cipher import SecretCipher
from sidecar.store.interface import Store
from sidecar.store.postgres.url import DEFAULT_DATABASE_SCHEMA, redact_url
from sidecar.store.records import PoolStatistics
from sidecar.store.sqlite import open_sqlite_store

__all__ = ["OpenedStore", "StoreTarget", "open_selected_store"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreTarget:
    """Where the store lives: `url` (PostgreSQL, in `schema`) or else the file at `path`."""

    path: Path
    url: str | None = None
    schema: str = DEFAULT_DATABASE_SCHEMA

    @property
    def is_postgres(self) -> bool:
        """True when the store is on a PostgreSQL server."""
        return self.url is not None

    def describe(self) -> str:
        """For people: the file, or the server with its password masked, and the schema."""
        if self.url is None:
            return str(self.path)
        return f"{redact_url(self.url)} (schema {self.schema})"


@dataclass(frozen=True, slots=True)
class OpenedStore:
    """The open store, and its connection pool's statistics when it has a pool."""

    store: Store
    pool_statistics: Callable[[], PoolStatistics] | None = None


async def open_selected_store(
    target: StoreTarget, *, cipher: SecretCipher, clock: Clock
) -> OpenedStore:
    """Open (and migrate) the store `target` names."""
    if target.url is None:
        return OpenedStore(await open_sqlite_store(target.path, cipher=cipher, clock=clock))
    # Imported here: the driver loads only when PostgreSQL is selected.
    from sidecar.store.postgres.store import open_postgres_store

    store = await open_postgres_store(target.url, schema=target.schema, cipher=cipher, clock=clock)
    return OpenedStore(store, store.pool_statistics)
