"""Per-installation key/value state. Secrets are sealed with the cipher, bound to their row."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

from sidecar.clock import Clock, format_timestamp
from sidecar.errors import StoreError
from sidecar.security.cipher import SecretCipher, associated_data
from sidecar.store.records import Fence, InstallationChange, StateEntry
from sidecar.store.sqlite._rows import record
from sidecar.store.sqlite.database import Database
from sidecar.store.sqlite.leases import fenced

T = TypeVar("T")

__all__ = ["SqliteState", "deep_merge"]

_WRITE = """
INSERT INTO installation_state (installation_id, key, value, encrypted, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (installation_id, key) DO UPDATE SET
    value = excluded.value, encrypted = excluded.encrypted, updated_at = excluded.updated_at
"""


def deep_merge(base: Mapping[str, object], patch: Mapping[str, object]) -> dict[str, object]:
    """`base` updated with `patch`; nested objects merge key by key instead of being replaced."""
    merged = dict(base)
    for key, value in patch.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


class SqliteState:
    """`State` on SQLite."""

    async def _change(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A write, after which cached views of installations (the inbound context) are
        stale: the generation moves once it is committed, whatever its outcome."""
        try:
            return await self._db.write(fn)
        finally:
            self._db.changed()

    def __init__(self, db: Database, cipher: SecretCipher, clock: Clock) -> None:
        self._db = db
        self._cipher = cipher
        self._clock = clock

    def _now(self) -> str:
        # Read on the event loop's side: operations run in the store's thread, where a
        # clock tied to trio (as in tests) cannot be read.
        return format_timestamp(self._clock())

    @staticmethod
    def _write(
        connection: sqlite3.Connection,
        installation_id: str,
        key: str,
        value: str,
        encrypted: bool,
        now: str,
    ) -> None:
        try:
            connection.execute(_WRITE, (installation_id, key, value, int(encrypted), now))
        except sqlite3.IntegrityError as exc:
            raise StoreError(
                f"no installation {installation_id!r}: record it before writing its state"
            ) from exc

    def _read(self, connection: sqlite3.Connection, installation_id: str, key: str) -> str | None:
        row = connection.execute(
            "SELECT value, encrypted FROM installation_state WHERE installation_id = ? AND key = ?",
            (installation_id, key),
        ).fetchone()
        if row is None:
            return None
        value = str(row["value"])
        if row["encrypted"]:
            return self._cipher.decrypt(value, associated_data(installation_id, key))
        return value

    @staticmethod
    def _is_secret(connection: sqlite3.Connection, installation_id: str, key: str) -> bool:
        row = connection.execute(
            "SELECT encrypted FROM installation_state WHERE installation_id = ? AND key = ?",
            (installation_id, key),
        ).fetchone()
        return row is not None and bool(row["encrypted"])

    async def get(self, installation_id: str, key: str) -> str | None:
        return await self._db.read(lambda c: self._read(c, installation_id, key))

    async def set(
        self, installation_id: str, key: str, value: str, *, fence: Fence | None = None
    ) -> None:
        now = self._now()
        await self._change(
            fenced(fence, lambda c: self._write(c, installation_id, key, value, False, now))
        )

    async def set_secret(self, installation_id: str, key: str, value: str) -> None:
        now = self._now()

        def write(connection: sqlite3.Connection) -> None:
            sealed = self._cipher.encrypt(value, associated_data(installation_id, key))
            self._write(connection, installation_id, key, sealed, True, now)

        await self._change(write)

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
        await self._change(fenced(fence, lambda c: self.write_change(c, change, now)))

    def write_change(
        self, connection: sqlite3.Connection, change: InstallationChange, now: str
    ) -> None:
        """The state part of `change`, inside the caller's transaction."""
        installation_id = change.installation_id
        for key, value in change.values.items():
            self._write(connection, installation_id, key, value, False, now)
        for key, value in change.secrets.items():
            sealed = self._cipher.encrypt(value, associated_data(installation_id, key))
            self._write(connection, installation_id, key, sealed, True, now)
        for key, value in change.default_secrets.items():
            if self._read(connection, installation_id, key) is None:
                sealed = self._cipher.encrypt(value, associated_data(installation_id, key))
                self._write(connection, installation_id, key, sealed, True, now)
        for key, patch in change.merge_json.items():
            self._merge(connection, installation_id, key, json.loads(json.dumps(patch)), now)
        connection.executemany(
            "DELETE FROM installation_state WHERE installation_id = ? AND key = ?",
            [(installation_id, key) for key in change.delete],
        )

    def _merge(
        self,
        connection: sqlite3.Connection,
        installation_id: str,
        key: str,
        patch: Mapping[str, object],
        now: str,
    ) -> dict[str, object]:
        if self._is_secret(connection, installation_id, key):
            raise StoreError(f"state {key!r} is a secret; merging would store it in clear")
        text = self._read(connection, installation_id, key)
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

        def write(connection: sqlite3.Connection) -> str:
            existing = self._read(connection, installation_id, key)
            if existing is not None:
                return existing
            value = make()
            sealed = self._cipher.encrypt(value, associated_data(installation_id, key))
            self._write(connection, installation_id, key, sealed, True, now)
            return value

        # Read and write in one write transaction: the first caller's secret wins, and
        # every later caller reads it back.
        return await self._change(write)

    async def delete(self, installation_id: str, key: str, *, fence: Fence | None = None) -> bool:
        removed = await self._change(
            fenced(
                fence,
                lambda c: (
                    c.execute(
                        "DELETE FROM installation_state WHERE installation_id = ? AND key = ?",
                        (installation_id, key),
                    ).rowcount
                ),
            )
        )
        return removed == 1

    async def take(
        self, installation_id: str, key: str, *, fence: Fence | None = None
    ) -> str | None:
        def write(connection: sqlite3.Connection) -> str | None:
            if self._is_secret(connection, installation_id, key):
                raise StoreError(f"state {key!r} is a secret; take() reads plain values only")
            value = self._read(connection, installation_id, key)
            connection.execute(
                "DELETE FROM installation_state WHERE installation_id = ? AND key = ?",
                (installation_id, key),
            )
            return value

        return await self._change(fenced(fence, write))

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
        return await self._change(
            fenced(fence, lambda c: self._merge(c, installation_id, key, patch_copy, now))
        )

    async def keys(self, installation_id: str) -> list[StateEntry]:
        def read(connection: sqlite3.Connection) -> list[StateEntry]:
            rows = connection.execute(
                "SELECT key, encrypted, updated_at FROM installation_state "
                "WHERE installation_id = ? ORDER BY key",
                (installation_id,),
            )
            return [record(StateEntry, row, encrypted=bool(row["encrypted"])) for row in rows]

        return await self._db.read(read)

    async def holders(self, key: str) -> list[str]:
        return await self._db.read(
            lambda c: [
                str(row[0])
                for row in c.execute(
                    "SELECT installation_id FROM installation_state WHERE key = ? "
                    "ORDER BY installation_id",
                    (key,),
                )
            ]
        )
