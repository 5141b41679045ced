"""The coarse health report of `GET /health` (PROTOCOL §9): safe to show to anyone.

    status         ok, or degraded (answered with 503) when the store does not answer,
                   an active installation's last run is older than 6 h, or more than 10
                   cursors are in error
    app            the vendor app's health (ok, unhealthy, unknown), only when it is
                   probed (APP_HEALTH_PATH); informative, never a cause of 503 by itself
    circuits       each peer's circuit breaker (closed, open, half_open): `open` means
                   calls to it are paused after repeated failures; informative too
    installations  per active installation: when it last ran, how long ago, how it ended,
                   and whether that is stale
    replicas       how many replicas of this database are alive, and this one's id
                   (REPLICA_ID); informative

It always answers, even when the store does not: a store failure (or a store too slow to
answer within a few seconds) is itself the report. No secret, no payload, no error text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import trio

from sidecar.clock import Clock, format_timestamp, parse_timestamp, system_clock
from sidecar.concurrency import describe_error
from sidecar.errors import StoreError
from sidecar.logs import get_logger
from sidecar.store.interface import Store
from sidecar.store.records import Installation, SyncRun

__all__ = ["MAX_CURSORS_IN_ERROR", "STALE_AFTER", "HealthReport", "check_health", "store_answers"]

STALE_AFTER: Final = timedelta(hours=6)
MAX_CURSORS_IN_ERROR: Final = 10
_STORE_DEADLINE_SECONDS: Final = 5.0
_MAX_LISTED: Final = 1000

_log = get_logger("health")


@dataclass(frozen=True, slots=True)
class HealthReport:
    """`healthy` decides 200 or 503; `body` is what /health returns."""

    healthy: bool
    body: dict[str, object]


async def store_answers(store: Store, *, deadline_seconds: float = _STORE_DEADLINE_SECONDS) -> bool:
    """True when the store answers a query within the deadline (GET /ready); never raises."""
    with trio.move_on_after(deadline_seconds):
        try:
            await store.ping()
        except StoreError as exc:
            _log.warning("readiness: the store failed", error=describe_error(exc))
            return False
        return True
    return False


async def _read(store: Store) -> tuple[list[Installation], dict[str, SyncRun], int]:
    await store.ping()
    active = await store.installations.list(status="active", limit=_MAX_LISTED)
    latest = await store.runs.latest([installation.installation_id for installation in active])
    return active, latest, await store.cursors.count_in_error()


async def _alive_replicas(store: Store) -> int:
    return sum(replica.alive for replica in await store.replicas.list())


async def check_health(
    store: Store,
    *,
    clock: Clock = system_clock,
    scheduled: bool = True,
    app_state: str | None = None,
    circuits: Mapping[str, str] | None = None,
    replica_id: str | None = None,
) -> HealthReport:
    """Ask the store how things are; never raise.

    `scheduled` is False when the scheduler is off (SYNC_INTERVAL_MINUTES=0): then no run
    is expected, and none is stale. `app_state` is the vendor app's health when it is
    probed (`AppHealth.state`): shown as `app`, it never makes the report unhealthy alone.
    `replica_id` (a serving sidecar's REPLICA_ID) adds `replicas`: how many are alive.
    """
    now = clock()
    checked_at = format_timestamp(now)
    app: dict[str, object] = {} if app_state is None else {"app": app_state}
    if circuits:
        app["circuits"] = dict(circuits)
    read: tuple[list[Installation], dict[str, SyncRun], int] | None = None
    alive: int | None = None
    try:
        with trio.move_on_after(_STORE_DEADLINE_SECONDS):
            read = await _read(store)
            if replica_id is not None:
                alive = await _alive_replicas(store)
    except Exception as exc:  # noqa: BLE001 - whatever the store did, /health answers
        _log.error("health check: the store failed", error=describe_error(exc))
    if replica_id is not None:
        app["replicas"] = {"alive": alive, "self": replica_id}
    if read is None:
        return HealthReport(
            False, {"status": "degraded", "db": "error", **app, "checked_at": checked_at}
        )
    active, latest, in_error = read
    listed = []
    stale_count = 0
    for installation in active:
        run = latest.get(installation.installation_id)
        since = run.started_at if run else installation.activated_at or installation.updated_at
        stale = scheduled and now - parse_timestamp(since) > STALE_AFTER
        stale_count += stale
        listed.append(
            {
                "installation_id": installation.installation_id,
                "last_run_at": run.started_at if run else None,
                "last_run_age_ms": (
                    round((now - parse_timestamp(run.started_at)).total_seconds() * 1000)
                    if run
                    else None
                ),
                "last_run_status": run.status if run else None,
                "stale": stale,
            }
        )
    healthy = stale_count == 0 and in_error <= MAX_CURSORS_IN_ERROR
    return HealthReport(
        healthy,
        {
            "status": "ok" if healthy else "degraded",
            "db": "ok",
            "active_installations": len(active),
            "cursors_in_error": in_error,
            "installations": listed,
            **app,
            "checked_at": checked_at,
        },
    )
