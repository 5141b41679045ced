"""The scheduler at scale, on trio's virtual clock: thousands of due installations fed to a
few workers as fast as they free up, longest overdue first, never twice at once."""

from __future__ import annotations

import itertools
from datetime import datetime

import trio
import trio.testing

from sidecar.clock import parse_timestamp
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore
from sidecar.sync.engine import StillDue
from sidecar.sync.scheduler import SyncQueue, SyncScheduler
from sidecar.sync.workers import run_workers
from tests.harness import trio_wall_clock

INTERVAL_MINUTES = 15
INTERVAL_SECONDS = INTERVAL_MINUTES * 60


class TimedEngine:
    """Stands in for SyncEngine: each run records a run row and takes `seconds` of virtual
    time (`slow` ones hang for `hang_seconds`, as an app that never answers until the
    timeout). It checks that no installation is synced twice at once and that the queue
    never holds more than its capacity."""

    def __init__(
        self,
        store: SqliteStore,
        queue: SyncQueue,
        *,
        seconds: float,
        slow: frozenset[str] = frozenset(),
        hang_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.queue = queue
        self.seconds = seconds
        self.slow = slow
        self.hang_seconds = hang_seconds
        self.running: set[str] = set()
        self.started: list[tuple[str, float]] = []
        self.finished: dict[str, float] = {}
        self.deepest = 0
        self.first_start = trio.Event()

    async def sync(
        self, installation_id: str, *, full: bool = False, still_due: StillDue | None = None
    ) -> None:
        assert installation_id not in self.running, f"{installation_id} synced twice at once"
        self.deepest = max(self.deepest, self.queue.depth())
        self.running.add(installation_id)
        self.started.append((installation_id, trio.current_time()))
        self.first_start.set()
        slow = installation_id in self.slow
        try:
            # The store is written while the virtual time of the run passes, so that the
            # clock, which jumps whenever every task waits, never jumps past the run's end
            # while a write is in a thread.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep, self.hang_seconds if slow else self.seconds)
                run = await self.store.runs.start(installation_id, "incremental")
                await self.store.runs.finish(run, "failed" if slow else "ok", {})
            self.finished[installation_id] = trio.current_time()
        finally:
            self.running.discard(installation_id)


async def _create(
    store: SqliteStore, mock_clock: trio.testing.MockClock, ids: list[str], spacing: float
) -> dict[str, datetime]:
    """Activate `ids` in this order, `spacing` virtual seconds apart; their activation time."""
    activated: dict[str, datetime] = {}
    for iid in ids:
        await store.installations.upsert(InstallationUpsert(installation_id=iid, status="active"))
        found = await store.installations.get(iid)
        assert found is not None
        activated[iid] = parse_timestamp(found.created_at)
        mock_clock.jump(spacing)
    return activated


async def _run(
    store: SqliteStore, queue: SyncQueue, engine: TimedEngine, workers: int, seconds: float
) -> SyncScheduler:
    scheduler = SyncScheduler(
        store=store, queue=queue, interval_minutes=INTERVAL_MINUTES, clock=trio_wall_clock
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run, stop)
        await nursery.start(
            lambda task_status: run_workers(
                engine=engine,
                queue=queue,
                limiter=trio.CapacityLimiter(workers),
                count=workers,
                task_status=task_status,
            )
        )
        await engine.first_start.wait()
        lag = scheduler.lag()  # what waits: shown by /metrics and the admin overview
        assert lag.overdue > 0
        assert lag.oldest_lag_seconds > 0
        # In steps: while every task waits on a store thread, the clock jumps to the next
        # deadline, which must stay near (a real second of I/O is not virtual minutes).
        for _ in range(int(seconds // 2)):
            await trio.sleep(2)
        stop.set()
    return scheduler


async def test_five_thousand_due_installations_are_all_synced_within_one_interval(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    count, workers, run_seconds = 5_000, 4, 0.5  # the sweep needs 625 s of the 900

    ids = [f"inst-{n * 7919 % count:05d}" for n in range(count)]  # due order is not id order
    activated = await _create(vstore, mock_clock, ids, spacing=0.02)
    queue = SyncQueue(capacity=workers)
    engine = TimedEngine(vstore, queue, seconds=run_seconds)
    began = trio.current_time()
    scheduler = await _run(vstore, queue, engine, workers, INTERVAL_SECONDS - 1)

    first_runs: dict[str, float] = {}
    for iid, at in engine.started:
        first_runs.setdefault(iid, at)
    assert len(first_runs) == count  # every installation synced…
    sweep = max(engine.finished.values()) - began
    assert sweep <= INTERVAL_SECONDS, sweep  # …within one interval
    assert len(engine.started) == count  # and only once: none is due again yet
    # Oldest due first: whatever starts at a moment was due no later than what starts after
    # (the workers that start at one moment are scheduled in any order).
    rounds: dict[float, list[datetime]] = {}
    for iid, at in engine.started:
        rounds.setdefault(at, []).append(activated[iid])
    ordered = [rounds[at] for at in sorted(rounds)]
    assert all(max(a) <= min(b) for a, b in itertools.pairwise(ordered))
    assert len(ordered) <= count // workers * 1.02  # four at a time: no worker left idle
    assert engine.deepest <= queue.capacity
    assert scheduler.lag().overdue == 0


async def test_a_hanging_installation_costs_only_one_workers_share(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    workers, run_seconds, hang_seconds = 4, 1.0, 300.0
    ids = [f"inst-{n:03d}" for n in range(300)]
    await _create(vstore, mock_clock, ids, spacing=0.01)
    queue = SyncQueue(capacity=workers)
    engine = TimedEngine(
        vstore, queue, seconds=run_seconds, slow=frozenset({ids[0]}), hang_seconds=hang_seconds
    )
    began = trio.current_time()
    await _run(vstore, queue, engine, workers, 600)

    others = [engine.finished[iid] - began for iid in ids[1:]]
    # Three workers carry the 299 others while the fourth waits on the hanging app.
    share = -(-len(others) // (workers - 1)) * run_seconds
    assert max(others) <= share + 2, (max(others), share)
    assert engine.finished[ids[0]] - began >= hang_seconds
