"""Resume points and runs (migration 2); leases are in test_leases.py."""

from __future__ import annotations

import pytest

from sidecar.store import InstallationUpsert
from sidecar.store.records import ResumePoint
from sidecar.store.sqlite import SqliteStore


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
