"""The scheduler and the workers, on trio's virtual clock."""

from __future__ import annotations

import trio
import trio.testing

from sidecar.state_keys import SYNC_REQUEST
from sidecar.store import InstallationUpsert
from sidecar.store.records import ResumePoint
from sidecar.store.sqlite import SqliteStore
from sidecar.sync.engine import StillDue
from sidecar.sync.requests import DurableSyncRequests
from sidecar.sync.scheduler import SyncJob, SyncQueue, SyncScheduler, WakingSyncRequests
from sidecar.sync.workers import run_workers
from tests.harness import trio_wall_clock


async def _active(store: SqliteStore, *ids: str) -> None:
    for iid in ids:
        await store.installations.upsert(InstallationUpsert(installation_id=iid, status="active"))


def test_queue_holds_an_installation_once_and_is_bounded() -> None:
    queue = SyncQueue(capacity=2)
    assert queue.offer(SyncJob("a"))
    assert not queue.offer(SyncJob("a", full=True))  # already queued
    assert queue.offer(SyncJob("b"))
    assert not queue.offer(SyncJob("c"))  # full: offered again at the next tick
    queue.done("a")
    assert queue.is_busy("b")
    assert not queue.is_busy("a")


async def test_due_installations(mock_clock: trio.testing.MockClock, vstore: SqliteStore) -> None:
    await _active(vstore, "fresh", "recent", "stale", "requested", "resuming")
    await vstore.installations.upsert(InstallationUpsert(installation_id="off", status="inactive"))
    for iid in ("recent", "stale", "requested", "resuming"):
        run = await vstore.runs.start(iid, "incremental")
        await vstore.runs.finish(run, "ok", {})
    mock_clock.jump(10 * 60)
    recent = await vstore.runs.start("recent", "incremental")  # 10 minutes after the others
    await vstore.runs.finish(recent, "ok", {})
    await vstore.state.set_json("requested", SYNC_REQUEST, {"full": True})
    await vstore.cursors.save_resume_point(
        ResumePoint(
            installation_id="resuming",
            entity="e",
            source_key="",
            run_kind="full",
            window_since="a",
            window_until="b",
            next_token="t",
        )
    )
    mock_clock.jump(6 * 60)  # "stale" ran 16 minutes ago, "recent" 6
    queue = SyncQueue(capacity=10)
    scheduler = SyncScheduler(store=vstore, queue=queue, interval_minutes=15, clock=trio_wall_clock)
    assert await scheduler.tick() == 4
    queued = set()
    while True:
        try:
            queued.add(queue.receive.receive_nowait().installation_id)
        except trio.WouldBlock:
            break
    assert queued == {"fresh", "stale", "requested", "resuming"}


async def test_interval_zero_only_runs_requests(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    await _active(vstore, "a", "b")
    await vstore.state.set_json("b", SYNC_REQUEST, {"full": True})
    queue = SyncQueue(capacity=10)
    scheduler = SyncScheduler(store=vstore, queue=queue, interval_minutes=0, clock=trio_wall_clock)
    assert await scheduler.tick() == 1
    assert queue.receive.receive_nowait().installation_id == "b"


class RecordingEngine:
    """Stands in for SyncEngine: takes `seconds`, records a run row (and consumes a pending
    request) as the real engine does, and how many syncs ran at once."""

    def __init__(self, store: SqliteStore | None = None, seconds: float = 10) -> None:
        self.store = store
        self.seconds = seconds
        self.running = 0
        self.peak = 0
        self.synced: list[tuple[str, float]] = []

    async def sync(
        self, installation_id: str, *, full: bool = False, still_due: StillDue | None = None
    ) -> None:
        if still_due is not None and not await still_due():
            return
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            run = None
            if self.store is not None:
                run = await self.store.runs.start(installation_id, "incremental")
                await self.store.state.take(installation_id, SYNC_REQUEST)
            await trio.sleep(self.seconds)
            self.synced.append((installation_id, trio.current_time()))
            if self.store is not None and run is not None:
                await self.store.runs.finish(run, "ok", {})
        finally:
            self.running -= 1


async def test_scheduler_and_workers_every_interval_and_on_request(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    await _active(vstore, "a", "b", "c")
    engine = RecordingEngine(vstore, seconds=5)
    queue = SyncQueue(capacity=10)
    scheduler = SyncScheduler(
        store=vstore, queue=queue, interval_minutes=15, clock=trio_wall_clock, tick_seconds=60
    )
    requests = WakingSyncRequests(DurableSyncRequests(vstore.state, trio_wall_clock), scheduler)
    stop = trio.Event()
    limiter = trio.CapacityLimiter(2)

    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run, stop)
        await nursery.start(
            lambda task_status: run_workers(
                engine=engine,
                queue=queue,
                limiter=limiter,
                count=3,
                task_status=task_status,
            )
        )
        await trio.sleep(30)
        assert sorted(iid for iid, _ in engine.synced) == ["a", "b", "c"]
        assert engine.peak == 2  # three workers, but capacity for two
        await trio.sleep(10 * 60)
        assert len(engine.synced) == 3  # not due yet
        await requests.request("b", full=True)
        await trio.sleep(10)
        assert [iid for iid, _ in engine.synced][3:] == ["b"]  # woken: no wait for the tick
        await trio.sleep(6 * 60)
        assert sorted(iid for iid, _ in engine.synced[4:]) == ["a", "c"]  # 15 minutes on
        stop.set()  # the scheduler closes the queue; the workers drain and return
    assert engine.running == 0


async def test_workers_drain_and_stop_when_the_queue_closes(
    mock_clock: trio.testing.MockClock,
) -> None:
    engine = RecordingEngine(seconds=3)
    queue = SyncQueue(capacity=10)
    for iid in ("a", "b", "c", "d"):
        queue.offer(SyncJob(iid))
    queue.close()
    with trio.fail_after(60):
        await run_workers(engine=engine, queue=queue, limiter=trio.CapacityLimiter(2), count=2)
    assert sorted(iid for iid, _ in engine.synced) == ["a", "b", "c", "d"]
    assert not any(queue.is_busy(iid) for iid in "abcd")


class _Borrowed(trio.abc.Instrument):
    """After every task step: (trio time, places of the limiter in use)."""

    def __init__(self, limiter: trio.CapacityLimiter) -> None:
        self.limiter = limiter
        self.seen: list[tuple[float, int]] = []

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        self.seen.append((trio.current_time(), self.limiter.statistics().borrowed_tokens))


async def test_a_worker_keeps_its_place_while_jobs_wait_and_gives_it_to_an_operator(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Between two queued jobs a worker is never counted free (health, overview and
    metrics read the limiter); an operator's sync waiting for a place gets the next one."""
    engine = RecordingEngine(seconds=3)
    queue = SyncQueue(capacity=10)
    for iid in "abcdef":
        queue.offer(SyncJob(iid))
    queue.close()
    limiter = trio.CapacityLimiter(2)
    borrowed = _Borrowed(limiter)
    operator_ran_at: list[float] = []

    async def operator() -> None:
        await trio.sleep(4)  # while the second jobs run
        async with limiter:
            operator_ran_at.append(trio.current_time())

    trio.lowlevel.add_instrument(borrowed)
    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                start = trio.current_time()
                nursery.start_soon(operator)
                await run_workers(engine=engine, queue=queue, limiter=limiter, count=2)
    finally:
        trio.lowlevel.remove_instrument(borrowed)
    assert sorted(iid for iid, _ in engine.synced) == list("abcdef")
    # Both places taken from the first jobs' start until the operator's turn, at the end
    # of the second jobs (t=3 was a change of jobs: no place was given back then)...
    assert {n for t, n in borrowed.seen if start < t < start + 6} == {2}
    # ...which came as soon as a worker finished a job, not once the queue was empty.
    assert operator_ran_at == [start + 6]


async def test_abandoned_runs_are_closed_at_start_and_at_each_sweep(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    await _active(vstore, "a", "b", "c")
    # A run left `running` by a replica that died (its lease released or never taken)…
    orphan = await vstore.runs.start("a", "full", owner="replica-a:1:x")
    # …and one whose replica (on another host: no pid to check) still holds the lease.
    held = await vstore.leases.acquire("installation:b", "replica-b:2:y/1", ttl_seconds=90)
    assert held is not None
    live = await vstore.runs.start("b", "full", owner="replica-b:2:y", fence=held.fence)
    stop = trio.Event()
    scheduler = SyncScheduler(
        store=vstore,
        queue=SyncQueue(capacity=3),
        interval_minutes=15,
        clock=trio_wall_clock,
        tick_seconds=60,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run, stop)
        closed, running = await vstore.runs.get(orphan), await vstore.runs.get(live)
        assert closed is not None
        assert closed.status == "interrupted"
        assert running is not None
        assert running.status == "running"
        # The replica holding b stalls: its lease expires, and the next sweep closes its run.
        await trio.sleep(100)
        running = await vstore.runs.get(live)
        assert running is not None
        assert running.status == "running"  # not yet swept (the sweep at 60 s saw it held)
        await trio.sleep(30)
        stop.set()
    running = await vstore.runs.get(live)
    assert running is not None
    assert running.status == "interrupted"


async def test_the_lag_counts_what_is_due_and_not_started(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    await _active(vstore, "a", "b", "c")
    run = await vstore.runs.start("c", "incremental")  # c ran: not due for 15 minutes
    await vstore.runs.finish(run, "ok", {})
    mock_clock.jump(90)
    paused = True
    queue = SyncQueue(capacity=1)
    scheduler = SyncScheduler(
        store=vstore,
        queue=queue,
        interval_minutes=15,
        clock=trio_wall_clock,
        paused=lambda: paused,
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run, stop)
        await trio.sleep(30)
        lag = scheduler.lag()  # paused: what is due waits, and grows older
        assert (lag.overdue, lag.oldest_lag_seconds) == (2, 120)
        assert lag.as_json() == {"overdue": 2, "oldest_lag_seconds": 120.0}
        paused = False
        scheduler.wake()
        await trio.sleep(1)
        # No worker: one job is queued, one waits for room; both still count.
        assert scheduler.lag().overdue == 2
        assert queue.depth() == 1
        queue.started(queue.receive.receive_nowait().installation_id)
        assert scheduler.lag().overdue == 1
        stop.set()
