"""The outbox in the store: queueing is atomic with the dedup claim, every later step is one
guarded transaction, dead letters are written with their step, pending events outlive
the retention purge."""

from __future__ import annotations

import sqlite3

import pytest
import trio

from sidecar.errors import StoreError
from sidecar.store import InstallationUpsert, RetentionPolicy
from sidecar.store.records import OutboxEntry, RejectedItemInput
from sidecar.store.sqlite import SqliteStore
from tests.conftest import FakeClock


def entry(key: str, installation_id: str = "i", **changes: str) -> OutboxEntry:
    values = {
        "installation_id": installation_id,
        "dedup_key": key,
        "action": "sale",
        "target": "trigger_event:acme_sale",
        "route": "event:acme_sale",
        "payload_json": '{"amount": 1}',
        "idempotency_key": f"inbound-{key}",
    }
    return OutboxEntry(**(values | changes))


async def installation(store: SqliteStore, installation_id: str = "i") -> None:
    await store.installations.upsert(
        InstallationUpsert(installation_id=installation_id, status="active")
    )


async def test_200_concurrent_enqueues_of_one_key_queue_one_event(store: SqliteStore) -> None:
    await installation(store)
    claims = []

    async def enqueue() -> None:
        claims.append(await store.outbox.enqueue(entry("k")))

    async with trio.open_nursery() as nursery:
        for _ in range(200):
            nursery.start_soon(enqueue)
    assert sum(claim.fresh for claim in claims) == 1
    assert {(claim.id, claim.status, claim.queued) for claim in claims} == {
        (claims[0].id, "done", True)
    }
    assert await store.outbox.counts() == {"queued": 1, "failed": 0, "delivered": 0, "dead": 0}


async def test_claim_and_outbox_row_commit_together(store: SqliteStore) -> None:
    await installation(store)
    # A payload the table refuses makes the outbox INSERT fail: the claim goes with it.
    bad = entry("k", payload_json=None)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="NOT NULL"):
        await store.outbox.enqueue(bad)
    assert await store.inbound_events.get("i", "k") is None
    fresh = await store.outbox.enqueue(entry("k"))
    assert fresh.fresh


async def test_a_failed_direct_claim_is_taken_over_by_a_queued_call(store: SqliteStore) -> None:
    await installation(store)
    direct = await store.inbound_events.claim("i", "k", "member")
    await store.inbound_events.finish(direct.id, "failed", "503")
    queued = await store.outbox.enqueue(entry("k"))
    assert (queued.id, queued.fresh, queued.queued) == (direct.id, True, True)
    replay = await store.outbox.enqueue(entry("k"))
    assert (replay.fresh, replay.status, replay.queued) == (False, "done", True)
    in_flight = await store.inbound_events.claim("i", "k2", "member")
    replay_of_direct = await store.outbox.enqueue(entry("k2"))
    assert (replay_of_direct.id, replay_of_direct.fresh) == (in_flight.id, False)
    assert (replay_of_direct.status, replay_of_direct.queued) == ("received", False)


async def test_retake_lets_exactly_one_retry_run_a_failed_direct_call(store: SqliteStore) -> None:
    await installation(store)
    claim = await store.inbound_events.claim("i", "k", "member")
    assert not await store.inbound_events.retake(claim.id)  # not failed: nothing to retake
    await store.inbound_events.finish(claim.id, "failed", "boom")
    results: list[bool] = []

    async def retake() -> None:
        results.append(await store.inbound_events.retake(claim.id))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(retake)
    assert results.count(True) == 1
    event = await store.inbound_events.get("i", "k")
    assert event is not None
    assert (event.status, event.error, event.processed_at) == ("received", None, None)


async def test_transitions_apply_only_while_pending(store: SqliteStore, clock: FakeClock) -> None:
    await installation(store)
    claim = await store.outbox.enqueue(entry("k"))
    assert await store.outbox.mark_failed(
        claim.id, error="HTTP 503", retry_at="2026-11-26T09:00:05.000Z"
    )
    event = await store.outbox.get(claim.id)
    assert event is not None
    assert (event.status, event.attempts, event.last_error, event.next_attempt_at) == (
        "failed",
        1,
        "HTTP 503",
        "2026-11-26T09:00:05.000Z",
    )
    clock.advance(seconds=5)
    assert await store.outbox.mark_delivered(claim.id)
    # A late or duplicated outcome changes nothing.
    assert not await store.outbox.mark_failed(claim.id, error="late", retry_at="x")
    assert not await store.outbox.mark_dead(claim.id, error="late", rejected=())
    assert not await store.outbox.mark_delivered(claim.id)
    event = await store.outbox.get(claim.id)
    assert event is not None
    assert (event.status, event.attempts, event.last_error) == ("delivered", 2, None)
    assert event.delivered_at == "2026-11-26T09:00:05.000Z"
    assert not event.pending


async def test_dead_events_are_dead_lettered_in_the_same_step(store: SqliteStore) -> None:
    await installation(store)
    claim = await store.outbox.enqueue(entry("k"))
    item = RejectedItemInput(item={"amount": 1}, reason="HTTP 422: amount must be positive")
    assert await store.outbox.mark_dead(claim.id, error="HTTP 422", rejected=[item])
    assert not await store.outbox.mark_dead(claim.id, error="again", rejected=[item])
    letters = await store.dead_letter.list(installation_id="i")
    assert [(r.entity, r.target, r.item_json, r.reason, r.run_id) for r in letters] == [
        ("inbound:sale", "trigger_event:acme_sale", '{"amount": 1}', item.reason, None)
    ]
    delivered = await store.outbox.enqueue(entry("k2"))
    rejected = RejectedItemInput(item={"order_id": 2}, reason="bad date")
    assert await store.outbox.mark_delivered(delivered.id, note="1 rejected", rejected=[rejected])
    assert await store.dead_letter.count("i") == 2


async def test_heads_are_the_oldest_pending_event_of_each_installation(
    store: SqliteStore,
) -> None:
    await installation(store, "a")
    await installation(store, "b")
    a1 = await store.outbox.enqueue(entry("1", "a"))
    b1 = await store.outbox.enqueue(entry("2", "b"))
    a2 = await store.outbox.enqueue(entry("3", "a"))
    assert [e.id for e in await store.outbox.heads()] == [a1.id, b1.id]
    await store.outbox.mark_failed(a1.id, error="503", retry_at="2026-11-26T09:01:00.000Z")
    assert [e.id for e in await store.outbox.heads()] == [a1.id, b1.id]  # a failed one holds
    await store.outbox.mark_delivered(a1.id)
    await store.outbox.mark_dead(b1.id, error="422", rejected=())
    assert [e.id for e in await store.outbox.heads()] == [a2.id]
    assert [e.id for e in await store.outbox.pending("a")] == [a2.id]
    assert await store.outbox.counts("a") == {"queued": 1, "failed": 0, "delivered": 1, "dead": 0}


async def test_retention_never_purges_an_event_still_to_deliver(
    store: SqliteStore, clock: FakeClock
) -> None:
    await installation(store)
    pending = await store.outbox.enqueue(entry("old-pending"))
    done = await store.outbox.enqueue(entry("old-done"))
    await store.outbox.mark_delivered(done.id)
    clock.advance(days=100)
    counts = await store.purge_expired(RetentionPolicy(days=90))
    assert counts.removed["inbound_events"] == 1
    assert await store.outbox.get(done.id) is None  # gone with its claim
    kept = await store.outbox.get(pending.id)
    assert kept is not None
    assert kept.status == "queued"
    assert await store.inbound_events.get("i", "old-pending") is not None


async def test_the_schema_refuses_an_unknown_status(store: SqliteStore) -> None:
    await installation(store)
    claim = await store.outbox.enqueue(entry("k"))

    def corrupt(connection: sqlite3.Connection) -> None:
        connection.execute(
            "UPDATE inbound_outbox SET status = 'sending' WHERE event_id = ?", (claim.id,)
        )

    with pytest.raises(StoreError, match="CHECK constraint failed"):
        await store.db.write(corrupt)
