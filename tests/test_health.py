"""/health (PROTOCOL §9): ok, degraded by stale runs or cursors in error, and a failing store."""

from __future__ import annotations

import trio
import trio.testing

from sidecar.errors import StoreError
from sidecar.health import check_health
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore
from tests.conftest import FakeClock


async def test_ok_with_recent_runs(store: SqliteStore, clock: FakeClock) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="a", status="active"))
    await store.installations.set_status("a", "active", activated_at="2026-11-26T08:00:00.000Z")
    run = await store.runs.start("a", "incremental")
    await store.runs.finish(run, "ok", {})
    clock.advance(minutes=20)
    report = await check_health(store, clock=clock)
    assert report.healthy
    assert report.body["status"] == "ok"
    assert report.body["active_installations"] == 1
    assert report.body["installations"] == [
        {
            "installation_id": "a",
            "last_run_at": "2026-11-26T09:00:00.000Z",
            "last_run_age_ms": 20 * 60 * 1000,
            "last_run_status": "ok",
            "stale": False,
        }
    ]


async def test_a_run_older_than_six_hours_is_stale(store: SqliteStore, clock: FakeClock) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="a", status="active"))
    await store.runs.start("a", "incremental")
    clock.advance(hours=6, seconds=1)
    report = await check_health(store, clock=clock)
    assert not report.healthy
    assert report.body["status"] == "degraded"
    assert report.body["installations"][0]["stale"] is True  # type: ignore[index]
    assert (await check_health(store, clock=clock, scheduled=False)).healthy


async def test_never_ran_is_stale_six_hours_after_activation(
    store: SqliteStore, clock: FakeClock
) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="a", status="active"))
    await store.installations.set_status("a", "active", activated_at="2026-11-26T09:00:00.000Z")
    assert (await check_health(store, clock=clock)).healthy
    clock.advance(hours=7)
    report = await check_health(store, clock=clock)
    assert not report.healthy
    assert report.body["installations"][0]["last_run_at"] is None  # type: ignore[index]


async def test_more_than_ten_cursors_in_error(store: SqliteStore, clock: FakeClock) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="a", status="inactive"))
    for n in range(11):
        await store.cursors.record_failure("a", f"e{n}", "", error="x", items=0)
    report = await check_health(store, clock=clock)
    assert not report.healthy
    assert report.body["cursors_in_error"] == 11


class BrokenStore:
    def __init__(self, hang: bool) -> None:
        self.hang = hang

    async def ping(self) -> None:
        if self.hang:
            await trio.sleep_forever()
        raise StoreError("disk I/O error")


async def test_always_answers_when_the_store_fails_or_hangs(
    mock_clock: trio.testing.MockClock,
) -> None:
    for hang in (False, True):
        report = await check_health(BrokenStore(hang), clock=FakeClock())  # type: ignore[arg-type]
        assert not report.healthy
        assert report.body == {
            "status": "degraded",
            "db": "error",
            "checked_at": "2026-11-26T09:00:00.000Z",
        }
