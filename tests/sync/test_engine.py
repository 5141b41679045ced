"""The sync engine against a fake app and a fake ShopiMind: windows, pages, the golden rule."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
import trio.testing

from sidecar.declaration.model import (
    DataSourceSpec,
    MaxRatio,
    Provisioning,
    ProvisioningPlan,
)
from sidecar.state_keys import PROVISIONING_REQUEST, SYNC_REQUEST
from sidecar.sync.engine import SyncNotPossibleError
from sidecar.sync.leases import LeaseBusyError, hold_lease
from sidecar.testing.vendor_app import Dataset, HttpStatus, JsonBody
from tests.sync.conftest import INSTALLATION, SyncEnv, step


async def test_first_run_backfills_every_page(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=25))
    await env.activate()
    report = await env.engine(step()).sync(INSTALLATION)
    assert report.status == "ok"
    assert report.items == 25
    assert report.cursors[0].pages == 3
    assert sorted(env.pushed_ids("customers")) == sorted(f"item-{i}" for i in range(25))
    assert await env.cursor_value("customers") == "2026-11-26T09:00:00.000Z"  # the window's until
    assert await env.store.cursors.resume_point(INSTALLATION, "customers") is None
    run = await env.store.runs.get(report.run_id)
    assert run is not None
    assert run.status == "ok"
    summary = json.loads(run.summary_json or "{}")
    assert summary["cursors"][0]["items"] == 25
    assert summary["cursors"][0]["window"] == "2025-11-26T09:00:00.000Z → 2026-11-26T09:00:00.000Z"


async def test_incremental_run_starts_at_the_cursor_with_overlap(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=5))
    await env.activate()
    await env.engine(step()).sync(INSTALLATION)
    env.clock.advance(hours=1)
    env.app.set_dataset(
        "customers", Dataset(count=3, start=datetime(2026, 11, 26, 9, 30, tzinfo=UTC))
    )
    before = len(env.api.items("customers"))
    report = await env.engine(step(), overlap_seconds=60).sync(INSTALLATION)
    assert report.kind == "incremental"
    assert report.items == 3
    assert len(env.api.items("customers")) == before + 3
    call = env.app.calls_to("/sync/customers")[-1]
    assert call.body["window"] == {  # type: ignore[index]
        "since": "2026-11-26T08:59:00.000Z",
        "until": "2026-11-26T10:00:00.000Z",
    }


async def test_a_pending_full_request_makes_a_full_run_and_is_consumed(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=3))
    await env.activate()
    await env.store.state.set_json(INSTALLATION, SYNC_REQUEST, {"full": True, "at": "x"})
    report = await env.engine(step()).sync(INSTALLATION)
    assert report.kind == "full"
    assert await env.store.state.get(INSTALLATION, SYNC_REQUEST) is None


async def test_per_source_steps_keep_one_cursor_per_source(env: SyncEnv) -> None:
    env.app.sources["orders"] = ["store-1", "store-2"]
    env.app.set_dataset("orders", Dataset(count=4), source_key="store-1")
    env.app.set_dataset("orders", Dataset(count=2), source_key="store-2")
    await env.activate()
    report = await env.engine(step("orders", cursor_scope="per-source", sources="app")).sync(
        INSTALLATION
    )
    assert report.status == "ok"
    assert [(c.source_key, c.items) for c in report.cursors] == [("store-1", 4), ("store-2", 2)]
    assert await env.cursor_value("orders", "store-1") is not None
    assert await env.cursor_value("orders", "store-2") is not None
    assert env.api.count("orders") == 6


async def test_a_failing_source_list_makes_the_run_partial(env: SyncEnv) -> None:
    env.app.inject(HttpStatus(status=500), times=5, path="/sources/orders")
    env.app.set_dataset("customers", Dataset(count=1))
    await env.activate()
    engine = env.engine(step(), step("orders", cursor_scope="per-source", sources="app"))
    report = await engine.sync(INSTALLATION)
    assert report.status == "partial"
    assert "orders: listing the sources failed" in report.errors[0]
    assert env.api.count("customers") == 1  # the other step still ran


async def test_data_source_steps_tag_items_and_refuse_unprovisioned_sources(env: SyncEnv) -> None:
    env.app.set_dataset("products", Dataset(count=2))
    env.app.set_dataset("sales", Dataset(count=1), source_key="paris")
    await env.activate(source_ids={"web": 71, "paris": 72})
    engine = env.engine(
        step("products", data_source="web"),
        step("sales", target="orders", cursor_scope="per-source", sources="data_sources"),
        step("vouchers", data_source="ghost"),
    )
    report = await engine.sync(INSTALLATION)
    assert {item["id_data_source"] for item in env.api.items("products")} == {71}
    assert [item["id_data_source"] for item in env.api.items("orders")] == [72]
    assert report.status == "partial"
    assert report.errors == ["vouchers: data source 'ghost' is not provisioned"]
    cursor = await env.store.cursors.get(INSTALLATION, "vouchers")
    assert cursor is not None
    assert cursor.last_status == "error"


async def test_custom_data_goes_to_the_provisioned_definition(env: SyncEnv) -> None:
    definition = env.api.add_definition(
        "loyalty_cards", status="active", fields=[{"name": "id", "type": "text"}]
    )
    env.app.set_dataset("cards", Dataset(count=3))
    await env.activate(def_ids={"loyalty_cards": definition})
    report = await env.engine(step("cards", target="custom_data:loyalty_cards")).sync(INSTALLATION)
    assert report.status == "ok"
    assert len(env.api.records(int(str(definition)))) == 3


async def test_disabled_steps_do_not_run(env: SyncEnv) -> None:
    env.app.set_dataset("products", Dataset(count=2))
    await env.activate(settings={"sync_products": False})
    report = await env.engine(step("products", enabled_when="sync_products")).sync(INSTALLATION)
    assert report.cursors == []
    assert env.app.calls_to("/sync/products") == []


async def test_app_failure_mid_window_holds_the_cursor_and_resumes_later(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=35))
    await env.activate()
    engine = env.engine(step())

    def fail_after_first_page(report: object) -> None:
        # Page 2 is already being fetched (one page ahead): page 3 is the first to fail,
        # on its first try and its one retry (NO_WAIT allows one).
        if not env.app.pending_faults:
            env.app.inject(HttpStatus(status=500), times=2, path="/sync/customers")

    first = await engine.sync(INSTALLATION, progress=fail_after_first_page)
    assert first.status == "partial"
    assert await env.cursor_value("customers") is None  # held
    point = await env.store.cursors.resume_point(INSTALLATION, "customers")
    assert point is not None
    assert (point.pages, point.items) == (2, 20)
    cursor = await env.store.cursors.get(INSTALLATION, "customers")
    assert cursor is not None
    assert cursor.consecutive_failures == 1
    env.clock.advance(minutes=2)  # past the 1-minute backoff
    second = await engine.sync(INSTALLATION)
    assert second.status == "ok"
    assert second.cursors[0].resumed
    assert second.cursors[0].items == 35
    assert sorted(env.pushed_ids("customers")) == sorted(f"item-{i}" for i in range(35))
    assert len(env.pushed_ids("customers")) == 35  # nothing pushed twice
    assert await env.cursor_value("customers") == "2026-11-26T09:00:00.000Z"  # the first window's


async def test_transport_failure_of_a_push_holds_the_cursor(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=15))
    await env.activate()
    env.api.fail_next(10, status=500, path="customers", after=1)  # the second page's push fails
    report = await env.engine(step()).sync(INSTALLATION)
    assert report.status == "partial"
    assert await env.cursor_value("customers") is None
    point = await env.store.cursors.resume_point(INSTALLATION, "customers")
    assert point is not None
    assert point.pages == 1


async def test_rejections_hold_by_default_and_replay_the_window(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=12))
    env.api.reject_when(
        lambda resource, item: "invalid email" if item.get("id") == "item-3" else None
    )
    await env.activate()
    report = await env.engine(step()).sync(INSTALLATION)
    assert report.status == "partial"
    assert report.cursors[0].rejected == 1
    assert "1 item(s) rejected" in report.errors[0]
    assert await env.cursor_value("customers") is None
    assert await env.store.cursors.resume_point(INSTALLATION, "customers") is None  # replay whole
    (dead,) = await env.store.dead_letter.list(installation_id=INSTALLATION)
    assert json.loads(dead.item_json)["id"] == "item-3"
    assert dead.reason == "invalid email"


async def test_tolerated_rejections_advance(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=12))
    env.api.reject_when(lambda resource, item: "bad" if item.get("id") == "item-3" else None)
    await env.activate()
    report = await env.engine(step(tolerate_rejects=True)).sync(INSTALLATION)
    assert report.status == "ok"
    assert await env.cursor_value("customers") is not None
    assert await env.store.dead_letter.count(INSTALLATION) == 1


async def test_max_ratio(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=100))
    env.api.reject_when(
        lambda resource, item: "bad" if item.get("id") in ("item-1", "item-2") else None
    )
    await env.activate()
    strict = await env.engine(step(tolerate_rejects=MaxRatio(max_ratio=0.01))).sync(INSTALLATION)
    assert strict.status == "partial"
    assert "above max_ratio" in strict.errors[0]
    env.clock.advance(minutes=5)
    lenient = await env.engine(step(tolerate_rejects=MaxRatio(max_ratio=0.02))).sync(INSTALLATION)
    assert lenient.status == "ok"


async def test_dead_letter_keeps_at_most_500_items_a_run(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=600))
    env.api.reject_when(lambda resource, item: "bad")
    await env.activate()
    report = await env.engine(step(page_limit=100, tolerate_rejects=True)).sync(INSTALLATION)
    assert report.cursors[0].rejected == 600
    assert report.cursors[0].dead_lettered == 500
    assert await env.store.dead_letter.count(INSTALLATION) == 500


async def test_never_ending_pagination_is_an_error(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=3))
    env.app.endless = True
    await env.activate()
    report = await env.engine(step(max_pages=5)).sync(INSTALLATION)
    assert report.status == "partial"
    assert "more than max_pages (5) pages" in report.errors[0]
    assert await env.cursor_value("customers") is None


async def test_a_garbage_page_is_an_error_not_a_crash(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=3))
    env.app.inject(JsonBody(value={"items": "nope"}), times=3, path="/sync/customers")
    await env.activate()
    report = await env.engine(step()).sync(INSTALLATION)
    assert report.status == "partial"
    assert "items" in report.errors[0]


async def test_backoff_skips_failed_cursors_until_due_and_escalates(
    env: SyncEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await env.activate()
    env.app.down = True
    engine = env.engine(step())
    for expected_failures, wait_minutes in ((1, 1), (2, 2), (3, 4)):
        report = await engine.sync(INSTALLATION)
        cursor = await env.store.cursors.get(INSTALLATION, "customers")
        assert cursor is not None
        assert cursor.consecutive_failures == expected_failures
        skipped = await engine.sync(INSTALLATION)  # inside the backoff: left alone
        assert skipped.cursors[0].skipped
        env.clock.advance(minutes=wait_minutes)
        _ = report
    assert any(
        r.levelno == logging.ERROR and r.getMessage().startswith("cursor keeps failing")
        for r in caplog.records
    )
    env.app.down = False
    env.app.set_dataset("customers", Dataset(count=2))
    full = await engine.sync(INSTALLATION, full=True)  # a full run ignores the backoff
    assert full.status == "ok"
    cursor = await env.store.cursors.get(INSTALLATION, "customers")
    assert cursor is not None
    assert cursor.consecutive_failures == 0


async def test_a_refused_resume_token_restarts_the_window(env: SyncEnv) -> None:
    env.app.set_dataset("customers", Dataset(count=25))
    await env.activate()
    # An interrupted window, and an app that restarted and forgot its tokens: the saved
    # token is refused with a 400.
    from sidecar.store.records import ResumePoint

    await env.store.cursors.save_resume_point(
        ResumePoint(
            installation_id=INSTALLATION,
            entity="customers",
            source_key="",
            run_kind="full",
            window_since="2025-11-26T09:00:00.000Z",
            window_until="2026-11-26T09:00:00.000Z",
            next_token="forgotten-token",
            pages=1,
            items=10,
        )
    )
    refused = await env.engine(step()).sync(INSTALLATION)
    assert refused.status == "partial"
    assert "HTTP 400" in refused.errors[0]
    assert await env.store.cursors.resume_point(INSTALLATION, "customers") is None
    env.clock.advance(minutes=5)
    again = await env.engine(step()).sync(INSTALLATION)
    assert again.status == "ok"
    assert again.cursors[0].items == 25


async def test_one_installation_never_syncs_twice_at_once(env: SyncEnv) -> None:
    await env.activate()
    async with hold_lease(
        env.store.leases, f"installation:{INSTALLATION}", "someone-else:1:x", ttl_seconds=30
    ):
        with pytest.raises(LeaseBusyError, match="held by someone-else"):
            await env.engine(step()).sync(INSTALLATION)
    assert await env.store.runs.recent(INSTALLATION) == []


async def test_only_active_installations_with_a_token_sync(env: SyncEnv) -> None:
    with pytest.raises(SyncNotPossibleError, match="no installation"):
        await env.engine(step()).sync(INSTALLATION)
    await env.activate()
    await env.store.installations.set_status(INSTALLATION, "inactive")
    with pytest.raises(SyncNotPossibleError, match="is inactive, not active"):
        await env.engine(step()).sync(INSTALLATION)


async def test_retries_honour_retry_after_under_the_mock_clock(
    mock_clock: trio.testing.MockClock, env: SyncEnv
) -> None:
    env.app.set_dataset("customers", Dataset(count=3))
    await env.activate()
    env.api.fail_next(1, status=429, retry_after=30, path="customers")
    report = await env.engine(step()).sync(INSTALLATION)
    assert report.status == "ok"
    assert env.api.count("customers") == 3
    assert trio.current_time() >= 30


async def test_provisioning_asked_for_during_a_sync_runs_before_the_next(env: SyncEnv) -> None:
    env.app.set_dataset("products", Dataset(count=1))
    await env.activate()
    await env.store.state.set_json(INSTALLATION, PROVISIONING_REQUEST, {"at": "x"})
    plan = Provisioning(
        plan=ProvisioningPlan(
            data_sources=(DataSourceSpec(key="web", label="Web", type="ecommerce"),)
        )
    )
    report = await env.engine(step("products", data_source="web"), provisioning=plan).sync(
        INSTALLATION
    )
    assert report.status == "ok"  # the source was provisioned first, then used
    assert await env.store.state.get(INSTALLATION, PROVISIONING_REQUEST) is None
    assert [r.method for r in env.api.requests_to("data-sources")] == ["GET", "POST"]
    tagged = {item["id_data_source"] for item in env.api.items("products")}
    assert len(tagged) == 1
