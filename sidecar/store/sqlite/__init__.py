"""The SQLite adapter of the store: one file in WAL mode, group-committed from a thread."""

from sidecar.store.sqlite.migrations import MIGRATIONS, Migration
from sidecar.store.sqlite.store import SqliteStore, open_sqlite_store

__all__ = ["MIGRATIONS", "Migration", "SqliteStore", "open_sqlite_store"]
