"""Cursor bookkeeping and run rows that are never left `running`."""

from __future__ import annotations

import json

import pytest

from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore


@pytest.fixture
async def installed(store: SqliteStore) -> SqliteStore:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    return store


async def test_cursor_success_and_failure_bookkeeping(installed: SqliteStore) -> None:
    cursors = installed.cursors
    assert await cursors.get("i", "orders") is None
    assert await cursors.record_failure("i", "orders", "", error="app down", items=0) == 1
    first = await cursors.get("i", "orders")
    assert first is not None
    assert (first.last_synced_at, first.last_status, first.last_error) == (
        None,
        "error",
        "app down",
    )
    await cursors.record_success("i", "orders", "", synced_at="2026-11-26T08:00:00.000Z", items=10)
    assert await cursors.record_failure("i", "orders", "", error="503", items=4) == 1
    assert await cursors.record_failure("i", "orders", "", error="503 again", items=0) == 2
    held = await cursors.get("i", "orders")
    assert held is not None
    assert held.last_synced_at == "2026-11-26T08:00:00.000Z"  # a failure never moves it
    assert (held.consecutive_failures, held.last_error) == (2, "503 again")
    assert await cursors.count_in_error() == 1
    await cursors.record_success("i", "orders", "", synced_at="2026-11-26T09:00:00.000Z", items=1)
    clean = await cursors.get("i", "orders")
    assert clean is not None
    assert (clean.consecutive_failures, clean.last_error, clean.last_status) == (0, None, "ok")
    assert await cursors.count_in_error() == 0


async def test_cursors_are_scoped_by_source(installed: SqliteStore) -> None:
    cursors = installed.cursors
    await cursors.record_success(
        "i", "sales", "store-1", synced_at="2026-01-01T00:00:00.000Z", items=1
    )
    await cursors.record_success(
        "i", "sales", "store-2", synced_at="2026-02-01T00:00:00.000Z", items=2
    )
    await cursors.record_success("i", "products", "", synced_at="2026-03-01T00:00:00.000Z", items=3)
    listed = [(c.entity, c.source_key, c.items) for c in await cursors.list("i")]
    assert listed == [("products", "", 3), ("sales", "store-1", 1), ("sales", "store-2", 2)]


async def test_runs_close_with_a_summary(installed: SqliteStore) -> None:
    run_id = await installed.runs.start("i", "full")
    running = await installed.runs.get(run_id)
    assert running is not None
    assert (running.status, running.kind, running.finished_at) == ("running", "full", None)
    await installed.runs.finish(run_id, "partial", {"steps": [{"entity": "orders", "items": 3}]})
    closed = await installed.runs.get(run_id)
    assert closed is not None
    assert closed.status == "partial"
    assert json.loads(closed.summary_json or "") == {"steps": [{"entity": "orders", "items": 3}]}
    assert closed.finished_at is not None


@pytest.mark.parametrize("poison", ["circular", "nan", "tuple-key"])
async def test_an_unserializable_summary_still_closes_the_run(
    installed: SqliteStore, poison: str
) -> None:
    summary: dict[object, object] = {"items": 3}
    if poison == "circular":
        summary["self"] = summary
    elif poison == "nan":
        summary["ratio"] = float("nan")
    else:
        summary[("a", "b")] = 1
    run_id = await installed.runs.start("i", "incremental")
    await installed.runs.finish(run_id, "failed", summary)  # type: ignore[arg-type]
    closed = await installed.runs.get(run_id)
    assert closed is not None
    assert closed.status == "failed"
    assert json.loads(closed.summary_json or "")["error"] == "unserializable value"


async def test_a_run_cannot_be_closed_as_running(installed: SqliteStore) -> None:
    run_id = await installed.runs.start("i", "incremental")
    with pytest.raises(ValueError, match="closed as one of"):
        await installed.runs.finish(run_id, "running", {})


async def test_recent_runs_newest_first(installed: SqliteStore) -> None:
    ids = [await installed.runs.start("i", "incremental") for _ in range(3)]
    assert [run.id for run in await installed.runs.recent("i", limit=2)] == ids[::-1][:2]


async def test_a_cursor_keeps_its_retry_time_until_its_next_outcome(
    installed: SqliteStore,
) -> None:
    cursors = installed.cursors
    later = "2026-11-26T11:00:00.000Z"
    await cursors.record_failure("i", "orders", "", error="429", items=0, retry_at=later)
    held = await cursors.get("i", "orders")
    assert held is not None
    assert held.retry_at == later
    await cursors.record_failure("i", "orders", "", error="app down", items=0)
    again = await cursors.get("i", "orders")
    assert again is not None
    assert again.retry_at is None  # this failure asked for nothing
    await cursors.record_failure("i", "orders", "", error="429", items=0, retry_at=later)
    await cursors.record_success("i", "orders", "", synced_at="2026-11-26T12:00:00.000Z", items=1)
    clean = await cursors.get("i", "orders")
    assert clean is not None
    assert clean.retry_at is None


@pytest.mark.parametrize("status", ["interrupted", "skipped"])
async def test_runs_close_as_interrupted_or_skipped(installed: SqliteStore, status: str) -> None:
    run_id = await installed.runs.start("i", "full")
    await installed.runs.finish(run_id, status, {"skipped": 1})  # type: ignore[arg-type]
    run = await installed.runs.get(run_id)
    assert run is not None
    assert run.status == status
