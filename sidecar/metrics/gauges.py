"""The gauges of `/metrics` that describe a state rather than count events, read when
Prometheus scrapes: the outbox backlog, cursors in error, the dead-letter, worker
capacity, the SQLite file sizes and the vendor app's health.

Reading them costs a few indexed queries and two `stat` calls per scrape, nothing between
scrapes. A store that does not answer is itself reported (`store_up 0`) rather than
turning the scrape into an error: a broken store is when the metrics matter most.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

import trio

from sidecar.clock import Clock, parse_timestamp, system_clock
from sidecar.concurrency import describe_error
from sidecar.errors import StoreError
from sidecar.logs import get_logger
from sidecar.store.interface import Store
from sidecar.store.records import PoolStatistics
from sidecar.sync.due import SyncLag

__all__ = ["GaugeSnapshot", "file_size", "read_gauges"]

_STORE_DEADLINE_SECONDS: Final = 5.0

_log = get_logger("metrics")


@dataclass(frozen=True, slots=True, kw_only=True)
class GaugeSnapshot:
    """The state gauges at one moment; the store's share is None when it did not answer."""

    store_up: bool = True
    outbox_depth: int = 0
    outbox_oldest_age_seconds: float = 0.0
    cursors_in_error: int = 0
    dead_letter_items: int = 0
    replicas_alive: int = 0
    """Replicas of this database heartbeating (by the database's clock)."""
    workers_in_use: int = 0
    workers_total: int = 0
    workers_waiting: int = 0
    sync_overdue: int = 0
    """Installations due for a scheduled sync and not started yet."""
    sync_oldest_lag_seconds: float = 0.0
    database_bytes: int = 0
    wal_bytes: int = 0
    app_healthy: bool | None = None
    """None when the app is not probed (no APP_HEALTH_PATH) or not probed yet."""
    circuits: Mapping[str, str] = field(default_factory=dict)
    """Each peer's circuit breaker state: closed, open or half_open."""
    database_pool: PoolStatistics | None = None
    """The PostgreSQL connection pool; None on SQLite (no pool)."""


async def file_size(path: Path) -> int:
    """The size of `path` in bytes, 0 when it does not exist."""
    try:
        stat = await trio.Path(path).stat()
    except FileNotFoundError:
        return 0
    return int(stat.st_size)


async def _store_gauges(store: Store, clock: Clock) -> GaugeSnapshot:
    # Only what the indexes answer: a scrape every few seconds must not walk the outbox.
    depth = await store.outbox.pending_count()
    oldest = await store.outbox.oldest_pending_at()
    age = max(0.0, (clock() - parse_timestamp(oldest)).total_seconds()) if oldest else 0.0
    return GaugeSnapshot(
        outbox_depth=depth,
        outbox_oldest_age_seconds=age,
        cursors_in_error=await store.cursors.count_in_error(),
        dead_letter_items=await store.dead_letter.count(),
        replicas_alive=sum(replica.alive for replica in await store.replicas.list()),
    )


async def read_gauges(
    store: Store,
    *,
    database_path: Path | None = None,
    limiter: trio.CapacityLimiter | None = None,
    app_healthy: Callable[[], bool | None] = lambda: None,
    clock: Clock = system_clock,
    circuits: Mapping[str, str] | None = None,
    database_pool: Callable[[], PoolStatistics] | None = None,
    sync_lag: Callable[[], SyncLag] | None = None,
) -> GaugeSnapshot:
    """Read every state gauge now; never raises for a failing store."""
    snapshot = GaugeSnapshot(store_up=False)
    try:
        with trio.move_on_after(_STORE_DEADLINE_SECONDS):
            snapshot = await _store_gauges(store, clock)
    except StoreError as exc:
        _log.error("metrics: the store failed", error=describe_error(exc))
    if database_path is not None:
        wal = database_path.with_name(database_path.name + "-wal")
        snapshot = replace(
            snapshot,
            database_bytes=await file_size(database_path),
            wal_bytes=await file_size(wal),
        )
    if limiter is not None:
        stats = limiter.statistics()
        snapshot = replace(
            snapshot,
            workers_in_use=stats.borrowed_tokens,
            workers_total=int(stats.total_tokens),
            workers_waiting=stats.tasks_waiting,
        )
    if database_pool is not None:
        snapshot = replace(snapshot, database_pool=database_pool())
    if sync_lag is not None:
        lag = sync_lag()
        snapshot = replace(
            snapshot,
            sync_overdue=lag.overdue,
            sync_oldest_lag_seconds=lag.oldest_lag_seconds,
        )
    return replace(snapshot, app_healthy=app_healthy(), circuits=dict(circuits or {}))
