"""Retention purges, the dead-letter and the audit log."""

from __future__ import annotations

import json

from sidecar.store import InstallationUpsert, RejectedItemInput, RetentionPolicy
from sidecar.store.sqlite import SqliteStore
from tests.conftest import FakeClock


async def _fill(store: SqliteStore) -> int:
    """One row in every purgeable table, stamped with the store's current time."""
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    await store.webhook_log.append(
        event="integration.installed", installation_id="i", signature_ok=True, payload_json="{}"
    )
    await store.webhook_claims.claim(
        "i", f"sig-{store._clock()}", claimed_by=None, stale_after_seconds=180
    )
    await store.inbound_events.claim("i", f"idem-{store._clock()}", "sale")
    run_id = await store.runs.start("i", "incremental")
    await store.runs.finish(run_id, "ok", {})
    await store.dead_letter.add(
        "i",
        run_id=run_id,
        entity="orders",
        source_key="",
        target="orders",
        items=[RejectedItemInput(item={"id": 1}, reason="invalid email")],
    )
    await store.audit.record(actor="cli", action="sync", installation_id="i")
    return run_id


async def test_purge_by_age_per_table(store: SqliteStore, clock: FakeClock) -> None:
    await _fill(store)
    clock.advance(days=100)
    still_running = await store.runs.start("i", "full")  # old and running: kept
    clock.advance(days=0.5)
    await _fill(store)  # fresh rows
    clock.advance(days=300)  # the first batch is 400 days old, the second ~300
    counts = await store.purge_expired(
        RetentionPolicy(days=350, dead_letter_days=350, audit_days=365)
    )
    assert counts.removed == {
        "webhook_log": 1,
        "webhook_claims": 1,
        "inbound_events": 1,
        "sync_runs": 1,
        "rejected_items": 1,
        "audit_log": 1,
        "replicas": 0,
    }
    assert counts.total == 6
    assert (await store.runs.get(still_running)) is not None
    again = await store.purge_expired(
        RetentionPolicy(days=350, dead_letter_days=350, audit_days=365)
    )
    assert again.total == 0


async def test_zero_days_keeps_forever(store: SqliteStore, clock: FakeClock) -> None:
    await _fill(store)
    clock.advance(days=10_000)
    counts = await store.purge_expired(RetentionPolicy(days=0, dead_letter_days=0, audit_days=0))
    assert counts.total == 0
    partial = await store.purge_expired(RetentionPolicy(days=0, dead_letter_days=30, audit_days=0))
    assert partial.removed["rejected_items"] == 1
    assert partial.total == 1


async def test_dead_letter_listing_counting_and_deleting(store: SqliteStore) -> None:
    run_id = await _fill(store)
    await store.dead_letter.add(
        "i",
        run_id=run_id,
        entity="customers",
        source_key="store-1",
        target="customers",
        items=[RejectedItemInput(item={"email": f"x{n}"}, reason="bad") for n in range(3)],
    )
    assert await store.dead_letter.count("i") == 4
    assert await store.dead_letter.count("nobody") == 0
    newest = await store.dead_letter.list(installation_id="i", limit=2)
    assert [json.loads(item.item_json) for item in newest] == [{"email": "x2"}, {"email": "x1"}]
    assert await store.dead_letter.delete([newest[0].id, newest[0].id, 999_999]) == 1
    assert await store.dead_letter.count() == 3


async def test_audit_detail_is_redacted(store: SqliteStore) -> None:
    await store.audit.record(
        actor="admin-api",
        action="reveal",
        installation_id="i",
        target="webhook:12",
        detail={"count": 1, "token": "leak-me", "nested": {"password": "p"}},
        client_ip="127.0.0.1",
    )
    (entry,) = await store.audit.list()
    detail = json.loads(entry.detail_json)
    assert detail == {"count": 1, "token": "[redacted]", "nested": {"password": "[redacted]"}}
    assert (entry.actor, entry.action, entry.client_ip) == ("admin-api", "reveal", "127.0.0.1")


async def test_webhook_log_lists_newest_first(store: SqliteStore) -> None:
    for n in range(3):
        await store.webhook_log.append(
            event=f"e{n}",
            installation_id="i" if n else None,
            signature_ok=bool(n),
            payload_json="{}",
        )
    entries = await store.webhook_log.list()
    assert [e.event for e in entries] == ["e2", "e1", "e0"]
    assert [e.signature_ok for e in entries] == [True, True, False]
    assert [e.event for e in await store.webhook_log.list(installation_id="i")] == ["e2", "e1"]
