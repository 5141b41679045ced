"""Per-installation key/value state. Secrets are sealed with the cipher, bound to their row
(the same sealed text as on SQLite, so a copied store decrypts with the same key). The
writes of plain values are fenced (`check_fence`) when given the lease they are made under."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping

import psycopg.errors

from sidecar.clock import Clock, format_timestamp
from sidecar.errors import StoreError
from sidecar.security.cipher import SecretCipher, associated_data
from sidecar.store.postgres._rows import record
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.postgres.leases import check_fence
from sidecar.store.records import Fence, InstallationChange, StateEntry
from sidecar.store.sqlite.state import deep_merge

__all__ = ["PostgresState"]

_WRITE = """
INSERT INTO installation_state (installation_id, key, value, encrypted, updated_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (installation_id, key) DO UPDATE SET
    value = excluded.value, encrypted = excluded.encrypted, updated_at = excluded.updated_at
"""
_DELETE = "DELETE FROM installation_state WHERE installation_id = %s AND key = %s"


class PostgresState:
    """`State` on PostgreSQL."""

    def __init__(self, db: Database, cipher: SecretCipher, clock: Clock) -> None:
        self._db = db
        self._cipher = cipher
        self._clock = clock

    def _now(self) -> str:
        # Read on the event loop's side: operations run in a worker thread, where a clock
        # tied to trio (as in tests) cannot be read.
        return format_timestamp(self._clock())

    @staticmethod
    def _write(
        connection: Connection,
        installation_id: str,
        key: str,
        value: str,
        encrypted: bool,
        now: str,
    ) -> None:
        try:
            connection.execute(_WRITE, (installation_id, key, value, int(encrypted), now))
        except psycopg.errors.ForeignKeyViolation as exc:
            raise StoreError(
                f"no installation {installation_id!r}: record it before writing its state"
            ) from exc

    def _read(
        self, connection: Connection, installation_id: str, key: str, *, lock: bool = False
    ) -> str | None:
        row = connection.execute(
            "SELECT value, encrypted FROM installation_state WHERE installation_id = %s "
            f"AND key = %s{' FOR UPDATE' if lock else ''}",
            (installation_id, key),
        ).fetchone()
        if row is None:
            return None
        value = str(row["value"])
        if row["encrypted"]:
            return self._cipher.decrypt(value, associated_data(installation_id, key))
        return value

    @staticmethod
    def _is_secret(connection: Connection, installation_id: str, key: str) -> bool:
        row = connection.execute(
            "SELECT encrypted FROM installation_state WHERE installation_id = %s AND key = %s "
            "FOR UPDATE",
            (installation_id, key),
        ).fetchone()
        return row is not None and bool(row["encrypted"])

    async def get(self, installation_id: str, key: str) -> str | None:
        return await self._db.read(lambda c: self._read(c, installation_id, key))

    async def set(
        self, installation_id: str, key: str, value: str, *, fence: Fence | None = None
    ) -> None:
        now = self._now()

        def write(connection: Connection) -> None:
            check_fence(connection, fence)
            self._write(connection, installation_id, key, value, False, now)

        await self._db.write(write)

    async def set_secret(self, installation_id: str, key: str, value: str) -> None:
        now = self._now()

        def write(connection: Connection) -> None:
            sealed = self._cipher.encrypt(value, associated_data(installation_id, key))
            self._write(connection, installation_id, key, sealed, True, now)

        await self._db.write(write)

    async def write_many(
        self,
        installation_id: str,
        *,
        values: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        delete: Collection[str] = (),
        fence: Fence | None = None,
    ) -> None:
        change = InstallationChange(
            installation_id=installation_id,
            values=dict(values or {}),
            secrets=dict(secrets or {}),
            delete=tuple(delete),
        )
        now = self._now()

        def write(connection: Connection) -> None:
            check_fence(connection, fence)
            self.write_change(connection, change, now)

        await self._db.write(write)

    def write_change(self, connection: Connection, change: InstallationChange, now: str) -> None:
        """The state part of `change`, inside the caller's transaction."""
        installation_id = change.installation_id
        for key, value in change.values.items():
            self._write(connection, installation_id, key, value, False, now)
        for key, value in change.secrets.items():
            sealed = self._cipher.encrypt(value, associated_data(installation_id, key))
            self._write(connection, installation_id, key, sealed, True, now)
        for key, value in change.default_secrets.items():
            sealed = self._cipher.encrypt(value, associated_data(installation_id, key))
            self._insert_absent(connection, installation_id, key, sealed, now)
        for key, patch in change.merge_json.items():
            self._merge(connection, installation_id, key, json.loads(json.dumps(patch)), now)
        for key in change.delete:
            connection.execute(_DELETE, (installation_id, key))

    @staticmethod
    def _insert_absent(
        connection: Connection, installation_id: str, key: str, sealed: str, now: str
    ) -> bool:
        """Write the sealed `key` unless it has a value; True when this call wrote it.
        ON CONFLICT waits for a concurrent writer of the key, whose value then wins."""
        try:
            inserted = connection.execute(
                "INSERT INTO installation_state (installation_id, key, value, encrypted, "
                "updated_at) VALUES (%s, %s, %s, 1, %s) "
                "ON CONFLICT (installation_id, key) DO NOTHING",
                (installation_id, key, sealed, now),
            ).rowcount
        except psycopg.errors.ForeignKeyViolation as exc:
            raise StoreError(
                f"no installation {installation_id!r}: record it before writing its state"
            ) from exc
        return inserted == 1

    def _merge(
        self,
        connection: Connection,
        installation_id: str,
        key: str,
        patch: Mapping[str, object],
        now: str,
    ) -> dict[str, object]:
        # FOR UPDATE: two merges of the same key queue up instead of losing one patch.
        if self._is_secret(connection, installation_id, key):
            raise StoreError(f"state {key!r} is a secret; merging would store it in clear")
        text = self._read(connection, installation_id, key, lock=True)
        current = {} if text is None else json.loads(text)
        if not isinstance(current, dict):
            raise StoreError(f"state {key!r} is not a JSON object; cannot merge into it")
        merged = deep_merge(current, patch)
        self._write(connection, installation_id, key, json.dumps(merged), False, now)
        return merged

    async def setdefault_secret(
        self, installation_id: str, key: str, make: Callable[[], str]
    ) -> str:
        now = self._now()

        def write(connection: Connection) -> str:
            existing = self._read(connection, installation_id, key)
            if existing is not None:
                return existing
            value = make()
            sealed = self._cipher.encrypt(value, associated_data(installation_id, key))
            if self._insert_absent(connection, installation_id, key, sealed, now):
                return value
            # Another caller's secret won (ON CONFLICT waited for its commit): read it back.
            existing = self._read(connection, installation_id, key)
            if existing is None:  # pragma: no cover - deleted between the two statements
                raise StoreError(f"state {key!r} vanished while being set")
            return existing

        return await self._db.write(write)

    async def delete(self, installation_id: str, key: str, *, fence: Fence | None = None) -> bool:
        def write(connection: Connection) -> int:
            check_fence(connection, fence)
            return connection.execute(_DELETE, (installation_id, key)).rowcount

        return await self._db.write(write) == 1

    async def take(
        self, installation_id: str, key: str, *, fence: Fence | None = None
    ) -> str | None:
        def write(connection: Connection) -> str | None:
            check_fence(connection, fence)
            if self._is_secret(connection, installation_id, key):
                raise StoreError(f"state {key!r} is a secret; take() reads plain values only")
            row = connection.execute(
                "DELETE FROM installation_state WHERE installation_id = %s AND key = %s "
                "RETURNING value",
                (installation_id, key),
            ).fetchone()
            return None if row is None else str(row["value"])

        return await self._db.write(write)

    async def get_json(self, installation_id: str, key: str) -> object | None:
        text = await self.get(installation_id, key)
        return None if text is None else json.loads(text)

    async def set_json(
        self, installation_id: str, key: str, value: object, *, fence: Fence | None = None
    ) -> None:
        await self.set(installation_id, key, json.dumps(value, ensure_ascii=False), fence=fence)

    async def merge_json(
        self,
        installation_id: str,
        key: str,
        patch: Mapping[str, object],
        *,
        fence: Fence | None = None,
    ) -> dict[str, object]:
        patch_copy = json.loads(json.dumps(patch))  # detach from the caller, fail early
        now = self._now()

        def write(connection: Connection) -> dict[str, object]:
            check_fence(connection, fence)
            return self._merge(connection, installation_id, key, patch_copy, now)

        return await self._db.write(write)

    async def keys(self, installation_id: str) -> list[StateEntry]:
        def read(connection: Connection) -> list[StateEntry]:
            rows = connection.execute(
                "SELECT key, encrypted, updated_at FROM installation_state "
                "WHERE installation_id = %s ORDER BY key",
                (installation_id,),
            )
            return [record(StateEntry, row, encrypted=bool(row["encrypted"])) for row in rows]

        return await self._db.read(read)

    async def holders(self, key: str) -> list[str]:
        def read(connection: Connection) -> list[str]:
            rows = connection.execute(
                "SELECT installation_id FROM installation_state WHERE key = %s "
                "ORDER BY installation_id",
                (key,),
            )
            return [str(row["installation_id"]) for row in rows]

        return await self._db.read(read)
