"""A consistent copy of the live database, taken while the sidecar runs.

SQLite's online backup API copies the database page by page from a connection of its
own; with WAL, readers never block the writer, so the service keeps running. The copy is
checked (`PRAGMA integrity_check`) before it is reported good, and is readable by its
owner only, like the database itself.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import trio

from sidecar.errors import StoreError
from sidecar.sqlite_file import is_sqlite_file
from sidecar.store.sqlite.database import BUSY_TIMEOUT_MILLISECONDS

__all__ = ["BackupResult", "backup_database"]


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What was copied."""

    target: Path
    size_bytes: int
    schema_version: int


def _copy(source: Path, target: Path) -> BackupResult:
    if not source.is_file() or not is_sqlite_file(source):
        raise StoreError(f"{source} is not an SQLite database (nothing to back up)")
    if target.exists():
        raise StoreError(f"{target} exists; refusing to overwrite it (choose a new path)")
    if not target.parent.is_dir():
        raise StoreError(f"folder {target.parent} does not exist")
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as origin:
            origin.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MILLISECONDS}")
            with sqlite3.connect(target) as copy:
                origin.backup(copy)
                check = copy.execute("PRAGMA integrity_check").fetchone()[0]
                if check != "ok":
                    raise StoreError(f"the copy failed its integrity check: {check}")
                version = int(copy.execute("PRAGMA user_version").fetchone()[0])
                # A standalone file: no -wal to carry along.
                copy.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise StoreError(f"backup failed: {exc}") from exc
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return BackupResult(target=target, size_bytes=target.stat().st_size, schema_version=version)


async def backup_database(source: Path, target: Path) -> BackupResult:
    """Copy the database at `source` to the new file `target`, consistently, while live."""
    return await trio.to_thread.run_sync(_copy, source, target)
