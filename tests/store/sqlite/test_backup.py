"""Online backup of the live store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio

from sidecar.errors import StoreError
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore
from sidecar.store.sqlite.backup import backup_database


async def test_a_copy_taken_while_writes_go_on(store: SqliteStore, tmp_path: Path) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))

    async def keep_writing() -> None:
        for n in range(200):
            await store.webhook_log.append(
                event=f"e{n}", installation_id="i", signature_ok=True, payload_json="{}"
            )

    target = tmp_path / "backups" / "copy.sqlite"
    target.parent.mkdir()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keep_writing)
        result = await backup_database(store.path, target)
    assert result.schema_version == await store.schema_version()
    assert result.size_bytes == target.stat().st_size
    assert target.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT installation_id FROM installations").fetchall() == [("i",)]
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


async def test_refusals(store: SqliteStore, tmp_path: Path) -> None:
    existing = tmp_path / "exists.sqlite"
    existing.write_bytes(b"")
    with pytest.raises(StoreError, match="refusing to overwrite"):
        await backup_database(store.path, existing)
    with pytest.raises(StoreError, match="does not exist"):
        await backup_database(store.path, tmp_path / "no" / "x.sqlite")
    with pytest.raises(StoreError, match="not an SQLite database"):
        await backup_database(tmp_path / "missing.sqlite", tmp_path / "y.sqlite")
