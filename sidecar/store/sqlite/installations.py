"""Installations: one row per shop, upserted without ever erasing a known value."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from sidecar.clock import Clock, format_timestamp
from sidecar.errors import StoreError
from sidecar.store.records import (
    Fence,
    Installation,
    InstallationChange,
    InstallationStatus,
    InstallationUpsert,
)
from sidecar.store.sqlite._rows import page, record
from sidecar.store.sqlite.database import Database
from sidecar.store.sqlite.leases import fenced
from sidecar.store.sqlite.state import SqliteState

T = TypeVar("T")

__all__ = ["SqliteInstallations"]

_UPSERT = """
INSERT INTO installations
    (installation_id, shop_domain, shop_name, status, installed_at, created_at, updated_at)
VALUES
    (:installation_id, :shop_domain, :shop_name, :status, :installed_at, :now, :now)
ON CONFLICT (installation_id) DO UPDATE SET
    shop_domain  = COALESCE(excluded.shop_domain, shop_domain),
    shop_name    = COALESCE(excluded.shop_name, shop_name),
    status       = excluded.status,
    installed_at = COALESCE(excluded.installed_at, installed_at),
    updated_at   = excluded.updated_at
"""

_SET_STATUS = """
UPDATE installations SET
    status         = :status,
    activated_at   = COALESCE(:activated_at, activated_at),
    deactivated_at = COALESCE(:deactivated_at, deactivated_at),
    uninstalled_at = COALESCE(:uninstalled_at, uninstalled_at),
    updated_at     = :now
WHERE installation_id = :installation_id
"""


_SEARCH = """
SELECT * FROM installations
WHERE (:status IS NULL OR status = :status)
  AND (:text = '' OR installation_id = :text
       OR lower(shop_name) LIKE :pattern ESCAPE '\\'
       OR lower(shop_domain) LIKE :pattern ESCAPE '\\')
ORDER BY created_at, installation_id LIMIT :limit OFFSET :offset
"""


class SqliteInstallations:
    """`Installations` on SQLite."""

    async def _change(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A write, after which cached views of installations (the inbound context) are
        stale: the generation moves once it is committed, whatever its outcome."""
        try:
            return await self._db.write(fn)
        finally:
            self._db.changed()

    def __init__(self, db: Database, clock: Clock, state: SqliteState) -> None:
        self._db = db
        self._clock = clock
        self._state = state

    @staticmethod
    def _upsert_params(upsert: InstallationUpsert, now: str) -> dict[str, object]:
        return {
            "installation_id": upsert.installation_id,
            "shop_domain": upsert.shop_domain,
            "shop_name": upsert.shop_name,
            "status": upsert.status,
            "installed_at": upsert.installed_at,
            "now": now,
        }

    async def upsert(self, upsert: InstallationUpsert) -> None:
        params = self._upsert_params(upsert, format_timestamp(self._clock()))
        await self._change(lambda c: c.execute(_UPSERT, params))

    async def apply(self, change: InstallationChange) -> None:
        now = format_timestamp(self._clock())
        iid = change.installation_id
        if change.upsert is not None and change.upsert.installation_id != iid:
            raise ValueError("an InstallationChange upserts its own installation only")

        def write(connection: sqlite3.Connection) -> None:
            if change.upsert is not None:
                connection.execute(_UPSERT, self._upsert_params(change.upsert, now))
            elif (
                connection.execute(
                    "SELECT 1 FROM installations WHERE installation_id = ?", (iid,)
                ).fetchone()
                is None
            ):
                raise StoreError(f"no installation {iid!r}: record it before changing it")
            if change.status is not None:
                connection.execute(
                    _SET_STATUS,
                    {
                        "installation_id": iid,
                        "status": change.status,
                        "activated_at": change.activated_at,
                        "deactivated_at": change.deactivated_at,
                        "uninstalled_at": change.uninstalled_at,
                        "now": now,
                    },
                )
            if change.external_account is not None:
                ref, name = change.external_account
                connection.execute(
                    "UPDATE installations SET external_account_ref = ?, "
                    "external_account_name = ?, updated_at = ? WHERE installation_id = ?",
                    (ref, name, now, iid),
                )
            self._state.write_change(connection, change, now)

        await self._change(write)

    async def set_status(
        self,
        installation_id: str,
        status: InstallationStatus,
        *,
        activated_at: str | None = None,
        deactivated_at: str | None = None,
        uninstalled_at: str | None = None,
    ) -> bool:
        params = {
            "installation_id": installation_id,
            "status": status,
            "activated_at": activated_at,
            "deactivated_at": deactivated_at,
            "uninstalled_at": uninstalled_at,
            "now": format_timestamp(self._clock()),
        }
        changed = await self._change(lambda c: c.execute(_SET_STATUS, params).rowcount)
        return changed == 1

    async def set_external_account(
        self,
        installation_id: str,
        ref: str | None,
        name: str | None = None,
        *,
        fence: Fence | None = None,
    ) -> bool:
        now = format_timestamp(self._clock())
        changed = await self._change(
            fenced(
                fence,
                lambda c: (
                    c.execute(
                        "UPDATE installations SET external_account_ref = ?, "
                        "external_account_name = ?, updated_at = ? WHERE installation_id = ?",
                        (ref, name, now, installation_id),
                    ).rowcount
                ),
            )
        )
        return changed == 1

    async def get(self, installation_id: str) -> Installation | None:
        def read(connection: sqlite3.Connection) -> Installation | None:
            row = connection.execute(
                "SELECT * FROM installations WHERE installation_id = ?", (installation_id,)
            ).fetchone()
            return None if row is None else record(Installation, row)

        return await self._db.read(read)

    async def list(
        self, *, status: InstallationStatus | None = None, limit: int = 100, offset: int = 0
    ) -> list[Installation]:
        limit, offset = page(limit, offset)

        def read(connection: sqlite3.Connection) -> list[Installation]:
            rows = connection.execute(
                "SELECT * FROM installations WHERE (:status IS NULL OR status = :status) "
                "ORDER BY created_at, installation_id LIMIT :limit OFFSET :offset",
                {"status": status, "limit": limit, "offset": offset},
            )
            return [record(Installation, row) for row in rows]

        return await self._db.read(read)

    async def search(
        self,
        text: str,
        *,
        status: InstallationStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[Installation]:
        limit, offset = page(limit, offset)
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params = {
            "text": text,
            "pattern": f"%{escaped}%",
            "status": status,
            "limit": limit,
            "offset": offset,
        }

        def read(connection: sqlite3.Connection) -> builtins.list[Installation]:
            rows = connection.execute(_SEARCH, params)
            return [record(Installation, row) for row in rows]

        return await self._db.read(read)

    async def count(self, *, status: InstallationStatus | None = None) -> int:
        return await self._db.read(
            lambda c: int(
                c.execute(
                    "SELECT COUNT(*) FROM installations "
                    "WHERE (:status IS NULL OR status = :status)",
                    {"status": status},
                ).fetchone()[0]
            )
        )
