"""The inbound outbox: queued events and their delivery state, one transaction per step.

Queueing claims the event's dedup key and writes its outbox row in one transaction, so
an event is either accepted and durable, or not accepted at all. Each later step of its
life (delivered, failed with a retry due, dead) is one guarded UPDATE: it applies only
while the event is still pending, so a late or duplicated outcome can never move a
delivered event back. A dead event's dead-letter row is written in the same transaction.

There is no "being delivered" state on purpose: an event whose attempt was cut short (a
crash, a cancellation) is still pending and is simply attempted again, and its
`Idempotency-Key` makes the repeat harmless.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence
from typing import Final

from sidecar.clock import Clock, format_timestamp
from sidecar.store.records import (
    INBOUND_ENTITY_PREFIX,
    Fence,
    InboundStatus,
    OutboxClaim,
    OutboxEntry,
    OutboxEvent,
    OutboxHead,
    OutboxStatus,
    RejectedItemInput,
)
from sidecar.store.sqlite._rows import page, record
from sidecar.store.sqlite.database import Database
from sidecar.store.sqlite.dead_letter import insert_rejected
from sidecar.store.sqlite.leases import fenced
from sidecar.store.sqlite.tallies import read_tally

__all__ = ["SqliteOutbox"]

_COLUMNS: Final = (
    "event_id AS id, installation_id, action, target, route, payload_json, idempotency_key, "
    "status, attempts, last_error, next_attempt_at, created_at, updated_at, delivered_at"
)
_PENDING: Final = "status IN ('queued', 'failed')"
_MAX_ERROR_CHARS: Final = 1000


def _clip(error: str | None) -> str | None:
    if error is None or len(error) <= _MAX_ERROR_CHARS:
        return error
    return error[:_MAX_ERROR_CHARS] + "…"


class SqliteOutbox:
    """`Outbox` on SQLite."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def enqueue(self, entry: OutboxEntry) -> OutboxClaim:
        now = format_timestamp(self._clock())

        def write(connection: sqlite3.Connection) -> OutboxClaim:
            # Accepting a queued event is its whole processing: the claim is `done` at once.
            cursor = connection.execute(
                "INSERT INTO inbound_events (installation_id, dedup_key, action, status, "
                "received_at, processed_at) VALUES (?, ?, ?, 'done', ?, ?) "
                "ON CONFLICT (installation_id, dedup_key) DO NOTHING",
                (entry.installation_id, entry.dedup_key, entry.action, now, now),
            )
            fresh = cursor.rowcount == 1
            status: InboundStatus = "done"
            if fresh:
                event_id = int(cursor.lastrowid or 0)
            else:
                row = connection.execute(
                    "SELECT id, status FROM inbound_events "
                    "WHERE installation_id = ? AND dedup_key = ?",
                    (entry.installation_id, entry.dedup_key),
                ).fetchone()
                event_id, status = int(row["id"]), row["status"]
            if not fresh and status == "failed":
                # An earlier call with this key failed (the action was `direct` then): this
                # one takes the key over, exactly as a retry of a failed direct call would.
                fresh = (
                    connection.execute(
                        "UPDATE inbound_events SET status = 'done', action = ?, error = NULL, "
                        "processed_at = ? WHERE id = ? AND status = 'failed'",
                        (entry.action, now, event_id),
                    ).rowcount
                    == 1
                )
                status = "done" if fresh else status
            if fresh:
                connection.execute(
                    "INSERT INTO inbound_outbox (event_id, installation_id, action, target, "
                    "route, payload_json, idempotency_key, status, next_attempt_at, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    (
                        event_id,
                        entry.installation_id,
                        entry.action,
                        entry.target,
                        entry.route,
                        entry.payload_json,
                        entry.idempotency_key,
                        now,
                        now,
                        now,
                    ),
                )
                return OutboxClaim(id=event_id, fresh=True, status="done", queued=True)
            queued = (
                connection.execute(
                    "SELECT 1 FROM inbound_outbox WHERE event_id = ?", (event_id,)
                ).fetchone()
                is not None
            )
            return OutboxClaim(id=event_id, fresh=False, status=status, queued=queued)

        return await self._db.write(write)

    async def get(self, event_id: int) -> OutboxEvent | None:
        def read(connection: sqlite3.Connection) -> OutboxEvent | None:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM inbound_outbox WHERE event_id = ?", (event_id,)
            ).fetchone()
            return None if row is None else record(OutboxEvent, row)

        return await self._db.read(read)

    async def heads(self, *, limit: int = 1000) -> list[OutboxHead]:
        def read(connection: sqlite3.Connection) -> list[OutboxHead]:
            rows = connection.execute(
                "SELECT event_id, installation_id, next_attempt_at FROM inbound_outbox "
                "WHERE event_id IN ("
                f"  SELECT MIN(event_id) FROM inbound_outbox WHERE {_PENDING} "
                "   GROUP BY installation_id"
                ") ORDER BY event_id LIMIT ?",
                (max(1, int(limit)),),
            )
            return [
                OutboxHead(id=row[0], installation_id=row[1], next_attempt_at=row[2])
                for row in rows
            ]

        return await self._db.read(read)

    async def pending(self, installation_id: str, *, limit: int = 100) -> list[OutboxEvent]:
        def read(connection: sqlite3.Connection) -> list[OutboxEvent]:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM inbound_outbox WHERE installation_id = ? AND {_PENDING} "
                "ORDER BY event_id LIMIT ?",
                (installation_id, max(1, int(limit))),
            )
            return [record(OutboxEvent, row) for row in rows]

        return await self._db.read(read)

    async def mark_delivered(
        self,
        event_id: int,
        *,
        note: str | None = None,
        rejected: Sequence[RejectedItemInput] = (),
        fence: Fence | None = None,
    ) -> bool:
        now = format_timestamp(self._clock())

        def write(connection: sqlite3.Connection) -> bool:
            row = self._transition(
                connection,
                event_id,
                "delivered",
                now,
                "last_error = ?, delivered_at = ?",
                (_clip(note), now),
            )
            if row is not None and rejected:
                self._dead_letter(connection, row, rejected, now)
            return row is not None

        return await self._db.write(fenced(fence, write))

    async def mark_failed(
        self, event_id: int, *, error: str, retry_at: str, fence: Fence | None = None
    ) -> bool:
        now = format_timestamp(self._clock())

        def write(connection: sqlite3.Connection) -> bool:
            return (
                self._transition(
                    connection,
                    event_id,
                    "failed",
                    now,
                    "last_error = ?, next_attempt_at = ?",
                    (_clip(error), retry_at),
                )
                is not None
            )

        return await self._db.write(fenced(fence, write))

    async def mark_dead(
        self,
        event_id: int,
        *,
        error: str,
        rejected: Sequence[RejectedItemInput],
        fence: Fence | None = None,
    ) -> bool:
        now = format_timestamp(self._clock())

        def write(connection: sqlite3.Connection) -> bool:
            row = self._transition(
                connection, event_id, "dead", now, "last_error = ?", (_clip(error),)
            )
            if row is not None:
                self._dead_letter(connection, row, rejected, now)
            return row is not None

        return await self._db.write(fenced(fence, write))

    async def counts(self, installation_id: str | None = None) -> dict[OutboxStatus, int]:
        def read(connection: sqlite3.Connection) -> dict[OutboxStatus, int]:
            # From the tallies the triggers keep (migration 7), not a count of the rows.
            counts: dict[OutboxStatus, int] = {"queued": 0, "failed": 0, "delivered": 0, "dead": 0}
            for status in counts:
                counts[status] = read_tally(connection, f"outbox:{status}", installation_id)
            return counts

        return await self._db.read(read)

    async def list(
        self,
        *,
        installation_id: str | None = None,
        status: OutboxStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[OutboxEvent]:
        limit, offset = page(limit, offset)

        def read(connection: sqlite3.Connection) -> builtins.list[OutboxEvent]:
            # Only the conditions asked for (see `counts`: `:x IS NULL OR …` hides indexes).
            where = " AND ".join(
                condition
                for condition, value in (
                    ("installation_id = :iid", installation_id),
                    ("status = :status", status),
                )
                if value is not None
            )
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM inbound_outbox "
                + (f"WHERE {where} " if where else "")
                + "ORDER BY event_id DESC LIMIT :limit OFFSET :offset",
                {"iid": installation_id, "status": status, "limit": limit, "offset": offset},
            )
            return [record(OutboxEvent, row) for row in rows]

        return await self._db.read(read)

    async def oldest_pending_at(self) -> str | None:
        def read(connection: sqlite3.Connection) -> str | None:
            # The oldest pending event has the smallest id: on the status index (its entries
            # ordered by id within a status), one step per pending status, however many
            # events wait or were delivered.
            row = connection.execute(
                "SELECT created_at FROM inbound_outbox WHERE event_id = "
                f"(SELECT MIN(event_id) FROM inbound_outbox WHERE {_PENDING})"
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._db.read(read)

    async def pending_count(self) -> int:
        return await self._db.read(
            lambda c: read_tally(c, "outbox:queued", None) + read_tally(c, "outbox:failed", None)
        )

    @staticmethod
    def _transition(
        connection: sqlite3.Connection,
        event_id: int,
        status: OutboxStatus,
        now: str,
        assignments: str,
        values: tuple[object, ...],
    ) -> sqlite3.Row | None:
        """Move a pending event to `status` (one more attempt); None when it is not pending."""
        changed = connection.execute(
            f"UPDATE inbound_outbox SET status = ?, attempts = attempts + 1, updated_at = ?, "
            f"{assignments} WHERE event_id = ? AND {_PENDING}",
            (status, now, *values, event_id),
        ).rowcount
        if changed != 1:
            return None
        row: sqlite3.Row = connection.execute(
            "SELECT installation_id, action, target FROM inbound_outbox WHERE event_id = ?",
            (event_id,),
        ).fetchone()
        return row

    @staticmethod
    def _dead_letter(
        connection: sqlite3.Connection,
        row: sqlite3.Row,
        items: Sequence[RejectedItemInput],
        now: str,
    ) -> None:
        insert_rejected(
            connection,
            str(row["installation_id"]),
            run_id=None,
            entity=INBOUND_ENTITY_PREFIX + str(row["action"]),
            source_key="",
            target=str(row["target"]),
            items=items,
            now=now,
        )
