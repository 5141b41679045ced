"""The coarse health report of `GET /health` (PROTOCOL §9): safe to show to anyone.

It always answers, even when the store does not: a store failure is itself the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.clock import Clock, format_timestamp, system_clock
from sidecar.errors import StoreError
from sidecar.logs import get_logger
from sidecar.store.interface import Store

__all__ = ["HealthReport", "check_health"]

_log = get_logger("health")


@dataclass(frozen=True, slots=True)
class HealthReport:
    """`status` ok or degraded; `body` is what /health returns."""

    healthy: bool
    body: dict[str, object]


async def check_health(store: Store, *, clock: Clock = system_clock) -> HealthReport:
    """Ask the store how things are; never raise."""
    checked_at = format_timestamp(clock())
    try:
        await store.ping()
        active = await store.installations.count(status="active")
        in_error = await store.cursors.count_in_error()
    except StoreError as exc:
        _log.error("health check: the store does not answer", error=str(exc))
        return HealthReport(False, {"status": "degraded", "db": "error", "checked_at": checked_at})
    return HealthReport(
        True,
        {
            "status": "ok",
            "db": "ok",
            "active_installations": active,
            "cursors_in_error": in_error,
            "checked_at": checked_at,
        },
    )
