"""Sync windows (PROTOCOL §8): which slice of time a step asks the app for.

first run, or a full backfill   since = now - backfill_days        until = now
incremental                     since = last_synced_at - overlap   until = now
resuming an unfinished window   exactly the window that was interrupted
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sidecar.clock import format_timestamp, parse_timestamp
from sidecar.store.records import Cursor, ResumePoint

__all__ = ["Window", "resumed_window", "window_for"]


@dataclass(frozen=True, slots=True)
class Window:
    """`since < updated_at <= until`, as the app filters it."""

    since: datetime
    until: datetime

    def describe(self) -> str:
        """The window as text, for logs and summaries."""
        return f"{format_timestamp(self.since)} → {format_timestamp(self.until)}"


def window_for(
    cursor: Cursor | None,
    *,
    full: bool,
    now: datetime,
    backfill_days: int,
    overlap_seconds: int,
) -> Window:
    """The window of a new run of a step."""
    if full or cursor is None or cursor.last_synced_at is None:
        return Window(since=now - timedelta(days=backfill_days), until=now)
    since = parse_timestamp(cursor.last_synced_at) - timedelta(seconds=overlap_seconds)
    # A cursor ahead of the clock (a clock stepped back) gives an empty window, never an
    # inverted one.
    return Window(since=min(since, now), until=now)


def resumed_window(point: ResumePoint) -> Window:
    """The window an interrupted run was working through."""
    return Window(
        since=parse_timestamp(point.window_since), until=parse_timestamp(point.window_until)
    )
