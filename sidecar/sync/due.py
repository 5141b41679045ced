"""When an installation is due for a sync, and how late the syncs are (rules, no I/O).

An installation is due at the earliest of:

- the moment its sync request was first seen (e.g. the backfill after an activation);
- the moment its interrupted window was last checkpointed (a resume point waits);
- SYNC_INTERVAL_MINUTES after its last run started, or, never synced, when it was
  activated (created, for want of an activation time).

The scheduler hands due installations to the workers longest overdue first, so a sweep
that fits the workers ends within one interval and no installation can starve: one that
waits only grows older than those that come due after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sidecar.clock import parse_timestamp
from sidecar.store.records import Installation

__all__ = ["DueInstallation", "SyncLag", "due_at", "sync_lag"]


@dataclass(frozen=True, slots=True, order=True)
class DueInstallation:
    """An installation that is due, ordered by how long it has been due."""

    due_at: datetime
    installation_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncLag:
    """How far behind the scheduled syncs are: installations due but not started yet."""

    overdue: int = 0
    oldest_lag_seconds: float = 0.0
    """How long the installation waiting longest has been due (0 when none waits)."""

    def as_json(self) -> dict[str, object]:
        """For the admin overview."""
        return {"overdue": self.overdue, "oldest_lag_seconds": round(self.oldest_lag_seconds, 3)}


def due_at(
    installation: Installation,
    *,
    last_started_at: str | None,
    requested_at: datetime | None,
    resume_saved_at: str | None,
    interval: timedelta | None,
) -> datetime | None:
    """When `installation` became (or becomes) due; None when nothing makes it due."""
    reasons: list[datetime] = []
    if requested_at is not None:
        reasons.append(requested_at)
    if resume_saved_at:
        reasons.append(parse_timestamp(resume_saved_at))
    if interval is not None:
        if last_started_at is not None:
            reasons.append(parse_timestamp(last_started_at) + interval)
        else:
            reasons.append(parse_timestamp(installation.activated_at or installation.created_at))
    return min(reasons, default=None)


def sync_lag(waiting: Iterable[datetime], now: datetime) -> SyncLag:
    """The lag of the installations due at `waiting` times and not started at `now`."""
    count = 0
    oldest: datetime | None = None
    for when in waiting:
        count += 1
        oldest = when if oldest is None else min(oldest, when)
    if oldest is None:
        return SyncLag()
    return SyncLag(overdue=count, oldest_lag_seconds=max(0.0, (now - oldest).total_seconds()))
