"""Installations: one row per shop, upserted without ever erasing a known value."""

from __future__ import annotations

import builtins

from sidecar.clock import Clock, format_timestamp
from sidecar.errors import StoreError
from sidecar.store.postgres._rows import page, record
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.postgres.leases import check_fence
from sidecar.store.postgres.state import PostgresState
from sidecar.store.records import (
    Fence,
    Installation,
    InstallationChange,
    InstallationStatus,
    InstallationUpsert,
)

__all__ = ["PostgresInstallations"]

_UPSERT = """
INSERT INTO installations AS i
    (installation_id, shop_domain, shop_name, status, installed_at, created_at, updated_at)
VALUES
    (%(installation_id)s, %(shop_domain)s, %(shop_name)s, %(status)s, %(installed_at)s,
     %(now)s, %(now)s)
ON CONFLICT (installation_id) DO UPDATE SET
    shop_domain  = COALESCE(excluded.shop_domain, i.shop_domain),
    shop_name    = COALESCE(excluded.shop_name, i.shop_name),
    status       = excluded.status,
    installed_at = COALESCE(excluded.installed_at, i.installed_at),
    updated_at   = excluded.updated_at
"""

_SET_STATUS = """
UPDATE installations SET
    status         = %(status)s,
    activated_at   = COALESCE(%(activated_at)s, activated_at),
    deactivated_at = COALESCE(%(deactivated_at)s, deactivated_at),
    uninstalled_at = COALESCE(%(uninstalled_at)s, uninstalled_at),
    updated_at     = %(now)s
WHERE installation_id = %(installation_id)s
"""

_SEARCH = """
SELECT * FROM installations
WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(text)s::text = '' OR installation_id = %(text)s::text
       OR lower(shop_name) LIKE %(pattern)s::text ESCAPE '\\'
       OR lower(shop_domain) LIKE %(pattern)s::text ESCAPE '\\')
ORDER BY created_at, installation_id LIMIT %(limit)s OFFSET %(offset)s
"""


class PostgresInstallations:
    """`Installations` on PostgreSQL."""

    def __init__(self, db: Database, clock: Clock, state: PostgresState) -> None:
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
        await self._db.write(lambda c: c.execute(_UPSERT, params))

    async def apply(self, change: InstallationChange) -> None:
        now = format_timestamp(self._clock())
        iid = change.installation_id
        if change.upsert is not None and change.upsert.installation_id != iid:
            raise ValueError("an InstallationChange upserts its own installation only")

        def write(connection: Connection) -> None:
            if change.upsert is not None:
                connection.execute(_UPSERT, self._upsert_params(change.upsert, now))
            elif (
                connection.execute(
                    "SELECT 1 FROM installations WHERE installation_id = %s FOR UPDATE", (iid,)
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
                    "UPDATE installations SET external_account_ref = %s, "
                    "external_account_name = %s, updated_at = %s WHERE installation_id = %s",
                    (ref, name, now, iid),
                )
            self._state.write_change(connection, change, now)

        await self._db.write(write)

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
        changed = await self._db.write(lambda c: c.execute(_SET_STATUS, params).rowcount)
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

        def write(connection: Connection) -> int:
            check_fence(connection, fence)
            return connection.execute(
                "UPDATE installations SET external_account_ref = %s, "
                "external_account_name = %s, updated_at = %s WHERE installation_id = %s",
                (ref, name, now, installation_id),
            ).rowcount

        return await self._db.write(write) == 1

    async def get(self, installation_id: str) -> Installation | None:
        def read(connection: Connection) -> Installation | None:
            row = connection.execute(
                "SELECT * FROM installations WHERE installation_id = %s", (installation_id,)
            ).fetchone()
            return None if row is None else record(Installation, row)

        return await self._db.read(read)

    async def list(
        self, *, status: InstallationStatus | None = None, limit: int = 100, offset: int = 0
    ) -> list[Installation]:
        limit, offset = page(limit, offset)

        def read(connection: Connection) -> list[Installation]:
            rows = connection.execute(
                "SELECT * FROM installations "
                "WHERE (%(status)s::text IS NULL OR status = %(status)s::text) "
                "ORDER BY created_at, installation_id LIMIT %(limit)s OFFSET %(offset)s",
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

        def read(connection: Connection) -> builtins.list[Installation]:
            return [record(Installation, row) for row in connection.execute(_SEARCH, params)]

        return await self._db.read(read)

    async def count(self, *, status: InstallationStatus | None = None) -> int:
        def read(connection: Connection) -> int:
            row = connection.execute(
                "SELECT COUNT(*) AS n FROM installations "
                "WHERE (%(status)s::text IS NULL OR status = %(status)s::text)",
                {"status": status},
            ).fetchone()
            return 0 if row is None else int(row["n"])

        return await self._db.read(read)
