"""A sync run under its installation's lease, when another replica takes it over: the run
stops and writes nothing more, the worker goes on, and the taker closes the stale run."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from sidecar.clock import format_timestamp
from sidecar.errors import LeaseLostError, StoreError
from sidecar.metrics.hooks import NoMetrics
from sidecar.security.cipher import AesGcmCipher
from sidecar.state_keys import SYNC_REQUEST
from sidecar.store.records import Fence
from sidecar.sync.cursor_sync import CursorReport
from sidecar.sync.engine import NoLongerDueError, StillDue, SyncEngine
from sidecar.sync.scheduler import SyncJob, SyncQueue, SyncScheduler
from sidecar.sync.workers import run_workers
from sidecar.testing.vendor_app import Dataset
from tests.backends import Backend
from tests.conftest import CREDENTIALS_KEY_HEX
from tests.harness import LogWatch
from tests.sync.conftest import INSTALLATION, SyncEnv, step

LEASE = f"installation:{INSTALLATION}"
OTHER = "inst_other"


@pytest.fixture
async def benv(env: SyncEnv, backend: Backend, tmp_path: Path) -> AsyncIterator[SyncEnv]:
    """`env` with its store on each backend (the fence checks are the store's)."""
    where = replace(backend, path=tmp_path / "fenced.sqlite")
    store = await where.open(
        cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX)), clock=env.clock
    )
    try:
        yield replace(env, store=store)
    finally:
        await store.aclose()


class CountingMetrics(NoMetrics):
    """Counts the fenced writes refused."""

    def __init__(self) -> None:
        self.fenced = 0

    def lease_fenced_write(self) -> None:
        self.fenced += 1


async def _take_over(env: SyncEnv, name: str = LEASE) -> Fence:
    """Another replica takes the lease, as if ours had expired."""
    grant = await env.store.leases.acquire(
        name, "replica-b:1:beef/00000001", ttl_seconds=30, takeover=lambda owner: True
    )
    assert grant is not None
    return grant.fence


class StealingEngine:
    """The real engine, where another replica takes `victim` over after its first page."""

    def __init__(self, env: SyncEnv, engine: SyncEngine, victim: str) -> None:
        self._env, self._engine, self._victim = env, engine, victim
        self.stolen = False

    async def sync(
        self, installation_id: str, *, full: bool = False, still_due: StillDue | None = None
    ) -> object:
        async def steal(report: CursorReport) -> None:
            if not self.stolen:
                self.stolen = True
                await _take_over(self._env, f"installation:{installation_id}")

        progress = steal if installation_id == self._victim else None
        return await self._engine.sync(installation_id, full=full, progress=progress)


async def test_a_run_taken_over_between_two_pages_stops_and_writes_nothing_more(
    benv: SyncEnv,
) -> None:
    env = benv
    env.app.set_dataset("customers", Dataset(count=25))
    await env.activate()
    metrics = CountingMetrics()
    steal = StealingEngine(env, env.engine(step(), metrics=metrics), INSTALLATION)
    with pytest.raises(LeaseLostError) as lost:
        await steal.sync(INSTALLATION)
    assert lost.value.name == LEASE
    assert lost.value.epoch == 1  # ours; the taker holds epoch 2
    assert metrics.fenced == 1
    # Page 1 was pushed (and will be pushed again by the taker, same key), then nothing:
    # no resume point for it, no cursor, no second page, and the run row is left to the
    # taker to close.
    assert len(env.api.items("customers")) == 10
    assert await env.store.cursors.resume_point(INSTALLATION, "customers") is None
    assert await env.store.cursors.get(INSTALLATION, "customers") is None
    (run,) = await env.store.runs.recent(INSTALLATION)
    assert run.status == "running"
    lease = await env.store.leases.get(LEASE)
    assert lease is not None
    assert (lease.owner, lease.epoch) == ("replica-b:1:beef/00000001", 2)


async def test_the_worker_survives_a_lost_lease_and_syncs_the_others(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=25))
    await env.activate()
    await env.activate(OTHER)
    steal = StealingEngine(env, env.engine(step()), INSTALLATION)
    queue = SyncQueue(capacity=2)
    assert queue.offer(SyncJob(INSTALLATION))
    assert queue.offer(SyncJob(OTHER))
    queue.close()
    with LogWatch("sidecar.workers") as watch, trio.fail_after(60):
        await run_workers(engine=steal, queue=queue, limiter=trio.CapacityLimiter(1), count=1)
    assert steal.stolen
    (other,) = await env.store.runs.recent(OTHER)
    assert other.status == "ok"
    (line,) = [r for r in watch.records if r.getMessage().startswith("lease lost mid-run")]
    assert line.levelno == logging.WARNING
    assert line.exc_info is None  # no traceback
    meta = dict(getattr(line, "sidecar_meta", {}))
    assert {"installation_id": INSTALLATION, "lease": LEASE, "epoch": 1}.items() <= meta.items()


async def test_a_run_that_cannot_renew_stops_before_its_lease_may_be_taken(
    mock_clock: trio.testing.MockClock, env: SyncEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.app.set_dataset("customers", Dataset(count=200))
    await env.activate()

    async def unreachable(fence: Fence, *, ttl_seconds: float) -> bool:
        raise StoreError("the database does not answer")

    monkeypatch.setattr(env.store.leases, "renew", unreachable)
    pages: list[float] = []

    async def slow(report: CursorReport) -> None:
        pages.append(trio.current_time())
        await trio.sleep(4)

    ttl = 30.0
    started = trio.current_time()
    with pytest.raises(LeaseLostError):
        await env.engine(step(), lease_ttl_seconds=ttl).sync(INSTALLATION, progress=slow)
    stopped = trio.current_time() - started
    # Stopped by its own clock before ttl - margin (margin ttl/6) since the acquire: before
    # another replica may take the lease over (at ttl, by the database's clock).
    assert stopped <= ttl - ttl / 6 + 0.5
    assert stopped >= ttl - ttl / 6 - 5  # it did work until then, renewals failing
    assert len(pages) < 20
    assert all(at - started < ttl - ttl / 6 for at in pages)


async def test_the_taker_closes_the_run_left_running_by_the_holder_it_took_over(
    benv: SyncEnv,
) -> None:
    env = benv
    env.app.set_dataset("customers", Dataset(count=3))
    await env.activate()
    # A replica took the installation, opened its run, and froze.
    grant = await env.store.leases.acquire(LEASE, "replica-a:7:cafe/0000000a", ttl_seconds=30)
    assert grant is not None
    stale = await env.store.runs.start(
        INSTALLATION, "full", owner="replica-a:7:cafe", fence=grant.fence
    )
    env.clock.advance(seconds=31)  # its lease expired by the store's clock
    report = await env.engine(step()).sync(INSTALLATION)
    assert report.status == "ok"
    closed = await env.store.runs.get(stale)
    assert closed is not None
    assert closed.status == "interrupted"
    assert "replica-a:7:cafe/0000000a" in json.loads(closed.summary_json or "{}")["error"]
    # The frozen replica wakes up: its writes are refused.
    with pytest.raises(LeaseLostError):
        await env.store.runs.finish(stale, "ok", {}, fence=grant.fence)
    after = await env.store.runs.get(stale)
    assert after is not None
    assert after.status == "interrupted"


async def test_a_scheduled_job_synced_meanwhile_by_another_replica_is_skipped(
    env: SyncEnv,
) -> None:
    env.app.set_dataset("customers", Dataset(count=3))
    await env.activate()
    engine = env.engine(step())
    scheduler = SyncScheduler(
        store=env.store, queue=SyncQueue(capacity=1), interval_minutes=15, clock=env.clock
    )
    (seen,) = await scheduler.due()  # never synced: due
    await engine.sync(INSTALLATION)  # …and another replica syncs it now
    with pytest.raises(NoLongerDueError):
        await engine.sync(INSTALLATION, still_due=lambda: scheduler.still_due(INSTALLATION))
    assert len(await env.store.runs.recent(INSTALLATION)) == 1  # no run row for the skip
    lease = await env.store.leases.get(LEASE)
    assert lease is not None
    assert lease.expires_at <= format_timestamp(env.clock())  # released
    # Through a worker: the scheduled job is skipped quietly, an explicit one runs.
    queue = SyncQueue(capacity=2)
    assert queue.offer(SyncJob(INSTALLATION, due_at=seen.due_at))
    queue.close()
    await run_workers(
        engine=engine,
        queue=queue,
        limiter=trio.CapacityLimiter(1),
        count=1,
        still_due=scheduler.still_due,
    )
    assert len(await env.store.runs.recent(INSTALLATION)) == 1
    explicit = SyncQueue(capacity=1)
    assert explicit.offer(SyncJob(INSTALLATION))
    explicit.close()
    await run_workers(
        engine=engine,
        queue=explicit,
        limiter=trio.CapacityLimiter(1),
        count=1,
        still_due=scheduler.still_due,
    )
    assert len(await env.store.runs.recent(INSTALLATION)) == 2
    # Still due once the interval has passed since the other replica's run.
    env.clock.advance(minutes=16)
    assert await scheduler.still_due(INSTALLATION)


async def test_a_pending_request_keeps_it_due_under_the_lease(env: SyncEnv) -> None:
    await env.activate()
    scheduler = SyncScheduler(
        store=env.store, queue=SyncQueue(capacity=1), interval_minutes=0, clock=env.clock
    )
    assert not await scheduler.still_due(INSTALLATION)  # no interval, nothing asked
    await env.store.state.set_json(INSTALLATION, SYNC_REQUEST, {"at": "x"})
    assert await scheduler.still_due(INSTALLATION)
