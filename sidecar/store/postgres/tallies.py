"""Backlog tallies: counts of outbox rows by status and of dead-letter items, per
installation, kept by triggers in the same transaction as the rows they count (migration
7, as on SQLite). Reading one costs an index step per installation that has some."""

from __future__ import annotations

from sidecar.store.postgres.database import Connection

__all__ = ["read_tally"]


def read_tally(connection: Connection, tally: str, installation_id: str | None) -> int:
    """The tally (`outbox:<status>`, `dead_letter`) of one installation, or summed over all."""
    if installation_id is None:
        row = connection.execute(
            "SELECT COALESCE(SUM(n), 0) AS n FROM backlog_tallies WHERE tally = %s", (tally,)
        ).fetchone()
    else:
        row = connection.execute(
            "SELECT COALESCE(SUM(n), 0) AS n FROM backlog_tallies "
            "WHERE tally = %s AND installation_id = %s",
            (tally, installation_id),
        ).fetchone()
    return 0 if row is None else int(row["n"])
