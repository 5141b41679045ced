"""The state gauges read at scrape time from a real store, a limiter and the SQLite files;
a store that fails or hangs is reported as down, never raised."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import trio
import trio.testing

from sidecar.errors import StoreError
from sidecar.metrics import GaugeSnapshot, call_outcome, read_gauges
from sidecar.security.cipher import AesGcmCipher
from sidecar.store import InstallationUpsert, RejectedItemInput, Store, open_store
from sidecar.store.records import ReplicaRegistration
from sidecar.store.sqlite import SqliteStore
from sidecar.sync.due import SyncLag
from tests.conftest import FakeClock, outbox_entry


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "gauges.sqlite"


@pytest.fixture
async def opened(path: Path, cipher: AesGcmCipher, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    store = await open_store(path, cipher=cipher, clock=clock)
    try:
        yield store
    finally:
        await store.aclose()


entry = outbox_entry


async def test_an_empty_store_reads_as_zeroes(opened: SqliteStore, clock: FakeClock) -> None:
    assert await read_gauges(opened, clock=clock) == GaugeSnapshot(store_up=True)


async def test_the_store_gauges(opened: SqliteStore, clock: FakeClock) -> None:
    store = opened
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    delivered = await store.outbox.enqueue(entry("delivered"))  # the oldest, but not pending
    clock.advance(seconds=30)
    failed = await store.outbox.enqueue(entry("failed"))  # the oldest pending: 30 s later
    clock.advance(seconds=10)
    await store.outbox.enqueue(entry("queued"))
    dead = await store.outbox.enqueue(entry("dead"))
    await store.outbox.mark_delivered(delivered.id)
    await store.outbox.mark_failed(failed.id, error="503", retry_at="2030-01-01T00:00:00.000Z")
    await store.outbox.mark_dead(
        dead.id, error="422", rejected=[RejectedItemInput(item={"id": 1}, reason="bad")]
    )
    await store.dead_letter.add(
        "i",
        run_id=None,
        entity="orders",
        source_key="",
        target="orders",
        items=[RejectedItemInput(item={"id": n}, reason="bad") for n in range(2)],
    )
    await store.cursors.record_failure("i", "orders", "", error="app down", items=0)
    await store.cursors.record_failure("i", "sales", "s1", error="app down", items=0)
    await store.cursors.record_success(
        "i", "sales", "s2", synced_at="2026-01-01T00:00:00Z", items=1
    )
    for replica_id in ("web-1", "web-2", "web-3"):
        await store.replicas.register(
            ReplicaRegistration(id=replica_id, version="1", host="h", pid=1, alive_seconds=600)
        )
    await store.replicas.stopped("web-3")
    clock.advance(seconds=50)  # 90 s after the first event, 60 s after the oldest pending one

    snapshot = await read_gauges(store, clock=clock)
    assert snapshot.store_up
    assert snapshot.outbox_depth == 2  # one queued, one failed: delivered and dead are done
    assert snapshot.outbox_oldest_age_seconds == pytest.approx(60.0)
    assert snapshot.cursors_in_error == 2
    assert snapshot.dead_letter_items == 3
    assert snapshot.replicas_alive == 2  # the stopped one is not


async def test_the_oldest_age_is_never_negative(opened: SqliteStore, clock: FakeClock) -> None:
    await opened.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    await opened.outbox.enqueue(entry("k"))
    behind = FakeClock(clock.now)
    behind.advance(seconds=-60)  # a scrape whose clock is behind the row's stamp
    snapshot = await read_gauges(opened, clock=behind)
    assert (snapshot.outbox_depth, snapshot.outbox_oldest_age_seconds) == (1, 0.0)


async def test_worker_capacity_comes_from_the_limiter(opened: SqliteStore) -> None:
    limiter = trio.CapacityLimiter(2)
    holders = [object(), object()]
    for holder in holders:
        await limiter.acquire_on_behalf_of(holder)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limiter.acquire_on_behalf_of, object())  # waits: none left
        await trio.testing.wait_all_tasks_blocked()
        snapshot = await read_gauges(opened, limiter=limiter)
        assert (snapshot.workers_in_use, snapshot.workers_total, snapshot.workers_waiting) == (
            2,
            2,
            1,
        )
        limiter.release_on_behalf_of(holders[0])
    limiter.release_on_behalf_of(holders[1])
    snapshot = await read_gauges(opened, limiter=limiter)
    assert (snapshot.workers_in_use, snapshot.workers_waiting) == (1, 0)


async def test_database_and_wal_sizes(opened: SqliteStore, path: Path) -> None:
    await opened.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    snapshot = await read_gauges(opened, database_path=path)
    wal = path.with_name(path.name + "-wal")
    assert snapshot.database_bytes > 0
    assert snapshot.wal_bytes > 0
    assert (snapshot.database_bytes, snapshot.wal_bytes) == (
        (await trio.Path(path).stat()).st_size,
        (await trio.Path(wal).stat()).st_size,
    )
    without = await read_gauges(opened)
    assert (without.database_bytes, without.wal_bytes) == (0, 0)


async def test_missing_files_read_as_zero(opened: SqliteStore, tmp_path: Path) -> None:
    snapshot = await read_gauges(opened, database_path=tmp_path / "nowhere" / "x.sqlite")
    assert (snapshot.database_bytes, snapshot.wal_bytes) == (0, 0)
    assert snapshot.store_up


@pytest.mark.parametrize("healthy", [None, True, False])
async def test_app_health_is_asked_at_each_read(opened: SqliteStore, healthy: bool | None) -> None:
    assert (await read_gauges(opened, app_healthy=lambda: healthy)).app_healthy is healthy


async def test_a_store_that_raises_is_reported_down_with_the_other_gauges(
    path: Path, cipher: AesGcmCipher, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(path, cipher=cipher, clock=clock)
    await store.aclose()  # every call now raises StoreClosedError, a StoreError
    limiter = trio.CapacityLimiter(3)
    caplog.set_level(logging.ERROR)
    snapshot = await read_gauges(
        store, database_path=path, limiter=limiter, app_healthy=lambda: True, clock=clock
    )
    assert not snapshot.store_up
    assert (snapshot.outbox_depth, snapshot.cursors_in_error, snapshot.dead_letter_items) == (
        0,
        0,
        0,
    )
    assert snapshot.workers_total == 3
    assert snapshot.database_bytes == (await trio.Path(path).stat()).st_size > 0
    assert snapshot.app_healthy is True
    assert [r.getMessage() for r in caplog.records] == ["metrics: the store failed"]


class _HangingOutbox:
    async def pending_count(self) -> int:
        await trio.sleep_forever()
        raise AssertionError("unreachable")


class _HangingStore:
    outbox = _HangingOutbox()


class _RaisingOutbox:
    async def pending_count(self) -> int:
        raise StoreError("SQLite error: disk I/O error")


class _RaisingStore:
    outbox = _RaisingOutbox()


async def test_a_store_error_from_any_store_is_not_raised() -> None:
    snapshot = await read_gauges(cast(Store, _RaisingStore()))
    assert snapshot == GaugeSnapshot(store_up=False)


async def test_a_store_that_hangs_is_reported_down_after_a_deadline(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.autojump_threshold = 0
    started = trio.current_time()
    snapshot = await read_gauges(cast(Store, _HangingStore()), app_healthy=lambda: False)
    assert not snapshot.store_up
    assert snapshot.app_healthy is False
    assert trio.current_time() - started == pytest.approx(5.0)  # the scrape is bounded


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (None, "error"),
        (99, "error"),
        (100, "1xx"),
        (204, "2xx"),
        (301, "3xx"),
        (404, "4xx"),
        (503, "5xx"),
        (599, "5xx"),
        (600, "error"),
        (-1, "error"),
    ],
)
def test_call_outcome(status: int | None, outcome: str) -> None:
    assert call_outcome(status) == outcome


async def test_the_sync_lag_comes_from_the_scheduler(opened: SqliteStore) -> None:
    lag = SyncLag(overdue=12, oldest_lag_seconds=95.5)
    snapshot = await read_gauges(opened, sync_lag=lambda: lag)
    assert (snapshot.sync_overdue, snapshot.sync_oldest_lag_seconds) == (12, 95.5)
    assert (await read_gauges(opened)).sync_overdue == 0
