"""A replica died holding an installation's backfill: the other replicas' schedulers take it
over once its lease expires (they look every TTL/3), not at their next 60-second tick."""

from __future__ import annotations

import trio
import trio.testing

from sidecar.store import InstallationUpsert
from sidecar.store.records import ResumePoint
from sidecar.store.sqlite import SqliteStore
from sidecar.sync.engine import StillDue
from sidecar.sync.leases import LeaseBusyError
from sidecar.sync.scheduler import SyncQueue, SyncScheduler
from sidecar.sync.workers import run_workers
from tests.harness import trio_wall_clock

DEAD_TTL_SECONDS = 10.0
LEASE = "installation:a"


class LeasedEngine:
    """Stands in for SyncEngine: syncs only when it wins the installation's lease."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.synced_at: list[float] = []

    async def sync(
        self, installation_id: str, *, full: bool = False, still_due: StillDue | None = None
    ) -> None:
        grant = await self.store.leases.acquire(LEASE, "r2/1", ttl_seconds=DEAD_TTL_SECONDS)
        if grant is None:
            raise LeaseBusyError(LEASE, "r1/1")
        self.synced_at.append(trio.current_time())
        await self.store.leases.release(grant.fence)


async def _abandoned_backfill(store: SqliteStore) -> None:
    """Installation `a` mid-backfill, its lease held by a replica that just died."""
    await store.installations.upsert(InstallationUpsert(installation_id="a", status="active"))
    await store.cursors.save_resume_point(
        ResumePoint(
            installation_id="a",
            entity="customers",
            source_key="",
            run_kind="full",
            window_since="s",
            window_until="u",
            next_token="t",
        )
    )
    assert await store.leases.acquire(LEASE, "r1/1", ttl_seconds=DEAD_TTL_SECONDS) is not None


async def _first_sync(store: SqliteStore, watch_seconds: float | None) -> float:
    engine = LeasedEngine(store)
    queue = SyncQueue(capacity=2)
    scheduler = SyncScheduler(
        store=store,
        queue=queue,
        interval_minutes=0,
        clock=trio_wall_clock,
        tick_seconds=60,
        watch_seconds=watch_seconds,
    )
    stop = trio.Event()
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run, stop)
        await nursery.start(
            lambda task_status: run_workers(
                engine=engine,
                queue=queue,
                limiter=trio.CapacityLimiter(1),
                count=1,
                task_status=task_status,
            )
        )
        with trio.fail_after(300):
            while not engine.synced_at:  # noqa: ASYNC110 - virtual time, free
                await trio.sleep(0.5)
        stop.set()
    return engine.synced_at[0] - started


async def test_abandoned_work_is_taken_over_once_its_lease_expires(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    await _abandoned_backfill(vstore)
    took = await _first_sync(vstore, watch_seconds=DEAD_TTL_SECONDS / 3)
    assert DEAD_TTL_SECONDS <= took <= DEAD_TTL_SECONDS * 4 / 3


async def test_without_watching_it_waits_for_the_next_tick(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    await _abandoned_backfill(vstore)
    took = await _first_sync(vstore, watch_seconds=None)
    assert took >= 60
