"""The cursor's golden rule and its bookkeeping (PROTOCOL §8), in one place.

A cursor advances only when its window finished with no error and no untolerated
rejection, and never past the window's `until`. A failed cursor keeps its value, and the
next incremental run skips it until `updated_at + min(2^(k-1) minutes, 24 h)` after its
k-th consecutive failure; a full backfill ignores that backoff. A `Retry-After` of
ShopiMind or the app, longer than a request waits, is kept on the cursor: no run, full or
not, tries it sooner. Failing three times in a row is worth an error-level log line; a
clean run resets the count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sidecar.clock import parse_timestamp
from sidecar.declaration.model import MaxRatio, TolerateRejects
from sidecar.store.records import Cursor

__all__ = [
    "BACKOFF_CAP",
    "ESCALATE_AFTER_FAILURES",
    "Decision",
    "WindowOutcome",
    "backoff_until",
    "decide",
    "retry_not_before",
    "should_skip",
]

BACKOFF_CAP: Final = timedelta(hours=24)
ESCALATE_AFTER_FAILURES: Final = 3


def backoff_until(cursor: Cursor) -> datetime | None:
    """When a failed cursor may be tried again by an incremental run (None: now): after its
    backoff, and no sooner than a `Retry-After` (ShopiMind's or the app's)."""
    failures = cursor.consecutive_failures
    if failures <= 0:
        return None
    # 2^(k-1) minutes, computed without overflowing for a cursor that failed for months.
    delay = (
        BACKOFF_CAP if failures > 12 else min(timedelta(minutes=2 ** (failures - 1)), BACKOFF_CAP)
    )
    until = parse_timestamp(cursor.updated_at) + delay
    not_before = retry_not_before(cursor)
    return until if not_before is None else max(until, not_before)


def retry_not_before(cursor: Cursor) -> datetime | None:
    """The `Retry-After` kept for this cursor, when it asked for one (None: it did not)."""
    if cursor.retry_at is None or cursor.consecutive_failures <= 0:
        return None
    try:
        return parse_timestamp(cursor.retry_at)
    except ValueError:
        return None


def should_skip(cursor: Cursor | None, *, full: bool, now: datetime) -> bool:
    """True when a run must leave this cursor alone for now: an incremental run while the
    cursor waits out its backoff, any run while ShopiMind's `Retry-After` holds."""
    if cursor is None:
        return False
    if full:
        not_before = retry_not_before(cursor)
        return not_before is not None and now < not_before
    until = backoff_until(cursor)
    return until is not None and now < until


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowOutcome:
    """What happened to one window of one cursor."""

    complete: bool
    """Every page of the window was fetched and pushed (the app said there is no next)."""
    sent: int
    rejected: int
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Move the cursor or hold it; what to report; whether to replay the window whole."""

    advance: bool
    errors: tuple[str, ...]
    replay_window: bool = False
    """Held because of rejections: the next run must replay the window from its start."""


def _rejections_tolerated(outcome: WindowOutcome, tolerate: TolerateRejects) -> str | None:
    """None when the rejections may be let through, else why they may not."""
    if outcome.rejected == 0 or tolerate is True:
        return None
    if isinstance(tolerate, MaxRatio):
        ratio = outcome.rejected / (outcome.sent + outcome.rejected)
        if ratio <= tolerate.max_ratio:
            return None
        return (
            f"{outcome.rejected} item(s) rejected, {ratio:.2%} of the window, above "
            f"max_ratio {tolerate.max_ratio:.2%} (cursor held)"
        )
    return f"{outcome.rejected} item(s) rejected (cursor held; set tolerate_rejects to advance)"


def decide(outcome: WindowOutcome, tolerate: TolerateRejects) -> Decision:
    """Apply the golden rule to a window's outcome."""
    if outcome.errors or not outcome.complete:
        errors = outcome.errors or ("the window did not finish",)
        return Decision(advance=False, errors=errors)
    refused = _rejections_tolerated(outcome, tolerate)
    if refused is not None:
        return Decision(advance=False, errors=(refused,), replay_window=True)
    return Decision(advance=True, errors=())
