"""Resume points, leases and orphaned runs (migration 2)."""

from __future__ import annotations

import json

import pytest
import trio

from sidecar.store import InstallationUpsert
from sidecar.store.records import ResumePoint
from sidecar.store.sqlite import SqliteStore
from tests.conftest import FakeClock


@pytest.fixture
async def installed(store: SqliteStore) -> SqliteStore:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    return store


def _point(**changes: object) -> ResumePoint:
    values: dict[str, object] = {
        "installation_id": "i",
        "entity": "orders",
        "source_key": "store-1",
        "run_kind": "full",
        "window_since": "2025-11-26T09:00:00.000Z",
        "window_until": "2026-11-26T09:00:00.000Z",
        "next_token": "page-3",
        "pages": 2,
        "items": 1000,
        "sent": 990,
        "rejected": 10,
    }
    values.update(changes)
    return ResumePoint(**values)  # type: ignore[arg-type]


async def test_resume_point_round_trip_and_cleared_by_success(installed: SqliteStore) -> None:
    cursors = installed.cursors
    assert await cursors.resume_point("i", "orders", "store-1") is None
    await cursors.save_resume_point(_point())
    await cursors.save_resume_point(_point(next_token="page-4", pages=3))
    saved = await cursors.resume_point("i", "orders", "store-1")
    assert saved is not None
    assert (saved.next_token, saved.pages, saved.rejected) == ("page-4", 3, 10)
    assert saved.updated_at == "2026-11-26T09:00:00.000Z"
    assert [p.entity for p in await cursors.resume_points("i")] == ["orders"]
    assert [p.entity for p in await cursors.resume_points()] == ["orders"]
    # A failure keeps it (the window continues where it stopped)…
    await cursors.record_failure("i", "orders", "store-1", error="503", items=0)
    assert await cursors.resume_point("i", "orders", "store-1") is not None
    # …unless the window must be replayed whole…
    await cursors.record_failure(
        "i", "orders", "store-1", error="rejected", items=0, keep_resume_point=False
    )
    assert await cursors.resume_point("i", "orders", "store-1") is None
    # …and moving the cursor drops it in the same transaction.
    await cursors.save_resume_point(_point())
    await cursors.record_success(
        "i", "orders", "store-1", synced_at="2026-11-26T09:00:00.000Z", items=1000
    )
    assert await cursors.resume_point("i", "orders", "store-1") is None


async def test_leases_are_exclusive_and_expire(installed: SqliteStore, clock: FakeClock) -> None:
    leases = installed.leases
    assert await leases.acquire("sync:i", "a", ttl_seconds=60)
    assert not await leases.acquire("sync:i", "b", ttl_seconds=60)
    assert await leases.acquire("sync:i", "a", ttl_seconds=60)  # re-entrant for its owner
    clock.advance(seconds=50)
    assert await leases.renew("sync:i", "a", ttl_seconds=60)
    clock.advance(seconds=50)
    assert not await leases.acquire("sync:i", "b", ttl_seconds=60)  # renewed: still held
    clock.advance(seconds=11)
    assert await leases.acquire("sync:i", "b", ttl_seconds=60)  # expired: taken over
    assert not await leases.renew("sync:i", "a", ttl_seconds=60)
    await leases.release("sync:i", "a")  # not ours any more: no effect
    held = await leases.get("sync:i")
    assert held is not None
    assert held.owner == "b"
    await leases.release("sync:i", "b")
    assert await leases.get("sync:i") is None


async def test_a_dead_owner_is_taken_over_at_once(installed: SqliteStore) -> None:
    leases = installed.leases
    assert await leases.acquire("sync:i", "host:123:x", ttl_seconds=600)
    assert not await leases.acquire(
        "sync:i", "host:456:y", ttl_seconds=600, takeover=lambda o: False
    )
    assert await leases.acquire(
        "sync:i", "host:456:y", ttl_seconds=600, takeover=lambda owner: owner == "host:123:x"
    )


async def test_concurrent_acquisitions_have_one_winner(installed: SqliteStore) -> None:
    winners: list[str] = []

    async def contend(owner: str) -> None:
        if await installed.leases.acquire("sync:i", owner, ttl_seconds=60):
            winners.append(owner)

    async with trio.open_nursery() as nursery:
        for n in range(50):
            nursery.start_soon(contend, f"owner-{n}")
    assert len(winners) == 1


async def test_orphaned_runs_are_closed(installed: SqliteStore) -> None:
    live = await installed.runs.start("i", "incremental", owner="alive")
    dead = await installed.runs.start("i", "full", owner="dead")
    legacy = await installed.runs.start("i", "full")
    closed = await installed.runs.close_orphans(lambda owner: owner == "alive", "process died")
    assert closed == 2
    statuses = {run_id: (await installed.runs.get(run_id)) for run_id in (live, dead, legacy)}
    still_running = statuses[live]
    assert still_running is not None
    assert still_running.status == "running"
    for run_id in (dead, legacy):
        run = statuses[run_id]
        assert run is not None
        assert run.status == "interrupted"
        assert json.loads(run.summary_json or "") == {"error": "process died"}


async def test_latest_run_per_installation(installed: SqliteStore) -> None:
    await installed.installations.upsert(InstallationUpsert(installation_id="j", status="active"))
    await installed.runs.start("i", "full")
    newest_i = await installed.runs.start("i", "incremental")
    newest_j = await installed.runs.start("j", "full")
    latest = await installed.runs.latest()
    assert {iid: run.id for iid, run in latest.items()} == {"i": newest_i, "j": newest_j}
    assert await installed.runs.latest(["j", "never-ran", "j"]) == {"j": latest["j"]}
    assert await installed.runs.latest([]) == {}


async def test_latest_runs_of_many_named_installations(installed: SqliteStore) -> None:
    ids = [f"inst-{n:04d}" for n in range(1_200)]  # more than one read's worth
    newest: dict[str, int] = {}
    for iid in ids:
        await installed.installations.upsert(
            InstallationUpsert(installation_id=iid, status="active")
        )
    for iid in ids[::3]:
        await installed.runs.start(iid, "full")
        newest[iid] = await installed.runs.start(iid, "incremental")
    latest = await installed.runs.latest(ids)
    assert {iid: run.id for iid, run in latest.items()} == newest


async def test_the_newest_runs_counted_by_status(installed: SqliteStore) -> None:
    assert await installed.runs.latest_statuses() == {}
    for iid in ("j", "k"):
        await installed.installations.upsert(
            InstallationUpsert(installation_id=iid, status="active")
        )
    first = await installed.runs.start("i", "full")
    await installed.runs.finish(first, "failed", {})
    await installed.runs.start("i", "incremental")  # i's newest: running
    for iid in ("j", "k"):
        run = await installed.runs.start(iid, "full")
        await installed.runs.finish(run, "ok", {})
    assert await installed.runs.latest_statuses() == {"running": 1, "ok": 2}
