"""The inbound outbox: queued events and their delivery state, one transaction per step.

Queueing claims the event's dedup key and writes its outbox row in one transaction, so
an event is either accepted and durable, or not accepted at all. Each later step of its
life (delivered, failed with a retry due, dead) is one guarded UPDATE: it applies only
while the event is still pending, so a late or duplicated outcome can never move a
delivered event back. A dead event's dead-letter row is written in the same transaction.
The order of delivery within an installation is the order of the event ids (an identity
column, increasing with every claim), as on SQLite. The steps of delivery are fenced writes
(`check_fence`) when given the installation's outbox lease.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Final

from sidecar.clock import Clock, format_timestamp
from sidecar.store.postgres._rows import page, record
from sidecar.store.postgres.database import Connection, Database
from sidecar.store.postgres.dead_letter import insert_rejected
from sidecar.store.postgres.leases import check_fence
from sidecar.store.postgres.tallies import read_tally
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

__all__ = ["PostgresOutbox"]

_COLUMNS: Final = (
    "event_id AS id, installation_id, action, target, route, payload_json, idempotency_key, "
    "status, attempts, last_error, next_attempt_at, created_at, updated_at, delivered_at"
)
_PENDING: Final = "status IN ('queued', 'failed')"
_MAX_ERROR_CHARS: Final = 1000
_OUTBOX_LOCK_CLASS: Final = 0x0B0C
"""The first key of the advisory locks that order queueing per installation."""


def _clip(error: str | None) -> str | None:
    if error is None or len(error) <= _MAX_ERROR_CHARS:
        return error
    return error[:_MAX_ERROR_CHARS] + "…"


class PostgresOutbox:
    """`Outbox` on PostgreSQL."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def enqueue(self, entry: OutboxEntry) -> OutboxClaim:
        now = format_timestamp(self._clock())

        def write(connection: Connection) -> OutboxClaim:
            # Ids are drawn at INSERT but become visible at COMMIT: two transactions queueing
            # for one installation could commit out of id order, and the deliverer would
            # send the later event first. Queueing for one installation is serialized
            # (across every process on the database) until commit, so ids commit in order.
            connection.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                (_OUTBOX_LOCK_CLASS, entry.installation_id),
            )
            # Accepting a queued event is its whole processing: the claim is `done` at once.
            inserted = connection.execute(
                "INSERT INTO inbound_events (installation_id, dedup_key, action, status, "
                "received_at, processed_at) VALUES (%s, %s, %s, 'done', %s, %s) "
                "ON CONFLICT (installation_id, dedup_key) DO NOTHING RETURNING id",
                (entry.installation_id, entry.dedup_key, entry.action, now, now),
            ).fetchone()
            fresh = inserted is not None
            status: InboundStatus = "done"
            if inserted is not None:
                event_id = int(inserted["id"])
            else:
                row = connection.execute(
                    "SELECT id, status FROM inbound_events "
                    "WHERE installation_id = %s AND dedup_key = %s",
                    (entry.installation_id, entry.dedup_key),
                ).fetchone()
                if row is None:  # pragma: no cover - the conflicting row cannot vanish
                    raise LookupError("the claimed inbound event vanished")
                event_id, status = int(row["id"]), row["status"]
            if not fresh and status == "failed":
                # An earlier call with this key failed (the action was `direct` then): this
                # one takes the key over, exactly as a retry of a failed direct call would.
                fresh = (
                    connection.execute(
                        "UPDATE inbound_events SET status = 'done', action = %s, error = NULL, "
                        "processed_at = %s WHERE id = %s AND status = 'failed'",
                        (entry.action, now, event_id),
                    ).rowcount
                    == 1
                )
                status = "done" if fresh else status
            if fresh:
                connection.execute(
                    "INSERT INTO inbound_outbox (event_id, installation_id, action, target, "
                    "route, payload_json, idempotency_key, status, next_attempt_at, created_at, "
                    "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'queued', %s, %s, %s)",
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
                    "SELECT 1 FROM inbound_outbox WHERE event_id = %s", (event_id,)
                ).fetchone()
                is not None
            )
            return OutboxClaim(id=event_id, fresh=False, status=status, queued=queued)

        return await self._db.write(write)

    async def get(self, event_id: int) -> OutboxEvent | None:
        def read(connection: Connection) -> OutboxEvent | None:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM inbound_outbox WHERE event_id = %s", (event_id,)
            ).fetchone()
            return None if row is None else record(OutboxEvent, row)

        return await self._db.read(read)

    async def heads(self, *, limit: int = 1000) -> list[OutboxHead]:
        def read(connection: Connection) -> list[OutboxHead]:
            rows = connection.execute(
                "SELECT event_id, installation_id, next_attempt_at FROM inbound_outbox "
                "WHERE event_id IN ("
                f"  SELECT MIN(event_id) FROM inbound_outbox WHERE {_PENDING} "
                "   GROUP BY installation_id"
                ") ORDER BY event_id LIMIT %s",
                (max(1, int(limit)),),
            )
            return [
                OutboxHead(
                    id=row["event_id"],
                    installation_id=row["installation_id"],
                    next_attempt_at=row["next_attempt_at"],
                )
                for row in rows
            ]

        return await self._db.read(read)

    async def pending(self, installation_id: str, *, limit: int = 100) -> list[OutboxEvent]:
        def read(connection: Connection) -> list[OutboxEvent]:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM inbound_outbox "
                f"WHERE installation_id = %s AND {_PENDING} ORDER BY event_id LIMIT %s",
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

        def write(connection: Connection) -> bool:
            check_fence(connection, fence)
            row = self._transition(
                connection,
                event_id,
                "delivered",
                now,
                "last_error = %s, delivered_at = %s",
                (_clip(note), now),
            )
            if row is not None and rejected:
                self._dead_letter(connection, row, rejected, now)
            return row is not None

        return await self._db.write(write)

    async def mark_failed(
        self, event_id: int, *, error: str, retry_at: str, fence: Fence | None = None
    ) -> bool:
        now = format_timestamp(self._clock())

        def write(connection: Connection) -> bool:
            check_fence(connection, fence)
            return (
                self._transition(
                    connection,
                    event_id,
                    "failed",
                    now,
                    "last_error = %s, next_attempt_at = %s",
                    (_clip(error), retry_at),
                )
                is not None
            )

        return await self._db.write(write)

    async def mark_dead(
        self,
        event_id: int,
        *,
        error: str,
        rejected: Sequence[RejectedItemInput],
        fence: Fence | None = None,
    ) -> bool:
        now = format_timestamp(self._clock())

        def write(connection: Connection) -> bool:
            check_fence(connection, fence)
            row = self._transition(
                connection, event_id, "dead", now, "last_error = %s", (_clip(error),)
            )
            if row is not None:
                self._dead_letter(connection, row, rejected, now)
            return row is not None

        return await self._db.write(write)

    async def counts(self, installation_id: str | None = None) -> dict[OutboxStatus, int]:
        def read(connection: Connection) -> dict[OutboxStatus, int]:
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

        def read(connection: Connection) -> builtins.list[OutboxEvent]:
            # Only the conditions asked for (see `counts`).
            where = " AND ".join(
                condition
                for condition, value in (
                    ("installation_id = %(iid)s", installation_id),
                    ("status = %(status)s", status),
                )
                if value is not None
            )
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM inbound_outbox "
                + (f"WHERE {where} " if where else "")
                + "ORDER BY event_id DESC LIMIT %(limit)s OFFSET %(offset)s",
                {"iid": installation_id, "status": status, "limit": limit, "offset": offset},
            )
            return [record(OutboxEvent, row) for row in rows]

        return await self._db.read(read)

    async def oldest_pending_at(self) -> str | None:
        def read(connection: Connection) -> str | None:
            # ORDER BY … LIMIT 1 with the partial index's predicate: pending rows only.
            row = connection.execute(
                f"SELECT created_at FROM inbound_outbox WHERE {_PENDING} ORDER BY event_id LIMIT 1"
            ).fetchone()
            return None if row is None else str(row["created_at"])

        return await self._db.read(read)

    async def pending_count(self) -> int:
        return await self._db.read(
            lambda c: read_tally(c, "outbox:queued", None) + read_tally(c, "outbox:failed", None)
        )

    @staticmethod
    def _transition(
        connection: Connection,
        event_id: int,
        status: OutboxStatus,
        now: str,
        assignments: str,
        values: tuple[object, ...],
    ) -> dict[str, Any] | None:
        """Move a pending event to `status` (one more attempt); None when it is not pending."""
        row: dict[str, Any] | None = connection.execute(
            f"UPDATE inbound_outbox SET status = %s, attempts = attempts + 1, updated_at = %s, "
            f"{assignments} WHERE event_id = %s AND {_PENDING} "
            "RETURNING installation_id, action, target",
            (status, now, *values, event_id),
        ).fetchone()
        return row

    @staticmethod
    def _dead_letter(
        connection: Connection,
        row: dict[str, Any],
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
