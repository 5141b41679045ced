"""The retention purge: old rows go, in one transaction, with a count per table."""

from __future__ import annotations

from datetime import datetime, timedelta

from sidecar.clock import format_timestamp
from sidecar.store.postgres.database import Connection
from sidecar.store.records import PurgeCounts, RetentionPolicy
from sidecar.store.sqlite.retention import _TARGETS

__all__ = ["purge_expired"]


def purge_expired(connection: Connection, now: datetime, policy: RetentionPolicy) -> PurgeCounts:
    """Delete what the policy no longer keeps (0 days keeps forever); return the counts.
    The tables and their rules are SQLite's (`sidecar.store.sqlite.retention`)."""
    removed: dict[str, int] = {}
    for table, column, condition, field in _TARGETS:
        days = int(getattr(policy, field))
        if days <= 0:
            removed[table] = 0
            continue
        cutoff = format_timestamp(now - timedelta(days=days))
        removed[table] = connection.execute(
            f"DELETE FROM {table} WHERE {column} < %s {condition}", (cutoff,)
        ).rowcount
    return PurgeCounts(removed)
