"""The retention purge: old rows go, in one transaction, with a count per table."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from sidecar.clock import format_timestamp
from sidecar.store.records import PurgeCounts, RetentionPolicy

__all__ = ["purge_expired"]

# (table, timestamp column, extra condition, which policy field). Timestamps are
# fixed-width ISO-8601 UTC, so comparing them as strings compares the instants.
_TARGETS: tuple[tuple[str, str, str, str], ...] = (
    ("webhook_log", "received_at", "", "days"),
    ("webhook_claims", "claimed_at", "", "days"),
    ("inbound_events", "received_at", "", "days"),
    ("sync_runs", "started_at", "AND status <> 'running'", "days"),
    ("rejected_items", "created_at", "", "dead_letter_days"),
    ("audit_log", "at", "", "audit_days"),
    # A replica silent that long is gone (stopped, or dead): its row goes too.
    ("replicas", "heartbeat_at", "", "days"),
)


def purge_expired(
    connection: sqlite3.Connection, now: datetime, policy: RetentionPolicy
) -> PurgeCounts:
    """Delete what the policy no longer keeps (0 days keeps forever); return the counts."""
    removed: dict[str, int] = {}
    for table, column, condition, field in _TARGETS:
        days = int(getattr(policy, field))
        if days <= 0:
            removed[table] = 0
            continue
        cutoff = format_timestamp(now - timedelta(days=days))
        removed[table] = connection.execute(
            f"DELETE FROM {table} WHERE {column} < ? {condition}", (cutoff,)
        ).rowcount
    return PurgeCounts(removed)
