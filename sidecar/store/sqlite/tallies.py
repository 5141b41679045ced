"""Backlog tallies: counts of outbox rows by status and of dead-letter items, per
installation, kept by triggers in the same transaction as the rows they count (migration
4). Reading one costs an index step per installation that has some, never a table scan."""

from __future__ import annotations

import sqlite3

__all__ = ["read_tally"]


def read_tally(connection: sqlite3.Connection, tally: str, installation_id: str | None) -> int:
    """The tally (`outbox:<status>`, `dead_letter`) of one installation, or summed over all."""
    if installation_id is None:
        row = connection.execute(
            "SELECT COALESCE(SUM(n), 0) FROM backlog_tallies WHERE tally = ?", (tally,)
        ).fetchone()
    else:
        row = connection.execute(
            "SELECT COALESCE(SUM(n), 0) FROM backlog_tallies "
            "WHERE tally = ? AND installation_id = ?",
            (tally, installation_id),
        ).fetchone()
    return int(row[0])
