"""Which store to open: PostgreSQL when a DATABASE_URL is given, else the SQLite file.

The one place that knows both adapters; everything else holds a `Store`. PostgreSQL's
driver is imported only when it is selected, so an SQLite deployment never loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sidecar.clock import Clock
from sidecar.security.cipher import SecretCipher
from sidecar.store.interface import Store
from sidecar.store.records import PoolStatistics
from sidecar.store.sqlite import open_sqlite_store
from sidecar.store_target import StoreTarget

__all__ = ["OpenedStore", "StoreTarget", "open_selected_store"]


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
