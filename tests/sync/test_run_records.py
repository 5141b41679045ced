"""Honest run records: a run cut by a crash is `interrupted`, the run that continues its
backfill is `full` and `resumed`, a run that only waited out backoffs is `skipped`, and
/health is degraded while more cursors than the threshold are in error."""

from __future__ import annotations

import json

from sidecar.clock import format_timestamp
from sidecar.health import MAX_CURSORS_IN_ERROR, check_health
from sidecar.store.records import ResumePoint
from sidecar.testing.vendor_app import Dataset
from tests.sync.conftest import INSTALLATION, SyncEnv, step


async def test_a_crashed_backfill_is_interrupted_and_its_continuation_recorded_full(
    env: SyncEnv,
) -> None:
    env.app.set_dataset("customers", Dataset(count=25))
    await env.activate()
    # What a process killed mid-backfill leaves: its run `running`, its full window planned.
    crashed = await env.store.runs.start(INSTALLATION, "full", owner="host:4242:dead")
    now = env.clock()
    await env.store.cursors.save_resume_point(
        ResumePoint(
            installation_id=INSTALLATION,
            entity="customers",
            source_key="",
            run_kind="full",
            window_since=format_timestamp(now.replace(year=now.year - 1)),
            window_until=format_timestamp(now),
            next_token=None,
        )
    )

    report = await env.engine(step()).sync(INSTALLATION)  # an ordinary (incremental) tick

    old = await env.store.runs.get(crashed)
    assert old is not None
    assert old.status == "interrupted"
    assert json.loads(old.summary_json or "{}") == {
        "error": "interrupted: the process running it stopped"
    }
    assert (report.kind, report.resumed, report.status, report.items) == ("full", True, "ok", 25)
    new = await env.store.runs.get(report.run_id)
    assert new is not None
    assert (new.kind, new.status) == ("full", "ok")
    assert json.loads(new.summary_json or "{}")["resumed"] is True

    later = await env.engine(step()).sync(INSTALLATION)  # the backfill is over
    assert (later.kind, later.resumed) == ("incremental", False)


async def test_a_run_that_only_waited_out_backoffs_is_skipped(env: SyncEnv) -> None:
    await env.activate()
    engine = env.engine(step(), step("products"))
    env.app.down = True
    failed = await engine.sync(INSTALLATION)
    assert failed.status == "partial"

    skipped = await engine.sync(INSTALLATION)  # inside both cursors' 1-minute backoff

    assert skipped.status == "skipped"
    assert skipped.skipped == 2
    run = await env.store.runs.get(skipped.run_id)
    assert run is not None
    assert run.status == "skipped"
    summary = json.loads(run.summary_json or "{}")
    assert (summary["skipped"], summary["items"]) == (2, 0)

    env.app.down = False
    env.app.set_dataset("customers", Dataset(count=3))
    env.app.set_dataset("products", Dataset(count=0))
    env.clock.advance(minutes=2)
    assert (await engine.sync(INSTALLATION)).status == "ok"


async def test_health_is_degraded_while_too_many_cursors_are_in_error(env: SyncEnv) -> None:
    await env.activate()
    entities = [f"entity_{n}" for n in range(MAX_CURSORS_IN_ERROR + 1)]
    engine = env.engine(*(step(entity) for entity in entities))
    env.app.down = True
    await engine.sync(INSTALLATION)
    assert (await engine.sync(INSTALLATION)).status == "skipped"  # a fresh run, all in backoff

    health = await check_health(env.store, clock=env.clock)

    assert not health.healthy
    assert health.body["status"] == "degraded"
    assert health.body["cursors_in_error"] == MAX_CURSORS_IN_ERROR + 1
    listed = health.body["installations"]
    assert isinstance(listed, list)
    assert [entry["last_run_status"] for entry in listed] == ["skipped"]

    await env.store.cursors.reset(INSTALLATION, entities[0])
    assert (await check_health(env.store, clock=env.clock)).healthy
