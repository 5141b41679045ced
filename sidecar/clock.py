"""Wall-clock time in one format: ISO-8601 UTC with milliseconds, e.g. 2026-11-26T09:30:00.000Z.

Every timestamp the sidecar stores uses this fixed-width format, so timestamps sort and
compare correctly as plain strings (retention purges rely on it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "format_timestamp", "parse_timestamp", "system_clock"]

Clock = Callable[[], datetime]
"""A source of aware UTC datetimes; injected wherever tests need to control time."""


def system_clock() -> datetime:
    """The current time, as an aware UTC datetime."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as fixed-width ISO-8601 UTC with milliseconds and a `Z`."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (as stored by the sidecar, or any offset) into aware UTC."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a timezone: {text!r}")
    return parsed.astimezone(UTC)
