"""Atomic claims: webhook anti-replay and inbound dedup, under real concurrency."""

from __future__ import annotations

import trio

from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore


async def test_200_concurrent_webhook_claims_one_fresh(store: SqliteStore) -> None:
    results: list[bool] = []

    async def claim() -> None:
        results.append(await store.webhook_claims.claim("inst_1", "sig-abc"))

    async with trio.open_nursery() as nursery:
        for _ in range(200):
            nursery.start_soon(claim)
    assert len(results) == 200
    assert results.count(True) == 1


async def test_release_lets_a_resend_be_processed(store: SqliteStore) -> None:
    assert await store.webhook_claims.claim("i", "sig")
    assert not await store.webhook_claims.claim("i", "sig")
    assert await store.webhook_claims.claim("other", "sig")  # keyed per installation
    await store.webhook_claims.release("i", "sig")
    assert await store.webhook_claims.claim("i", "sig")


async def test_200_concurrent_inbound_claims_one_fresh(store: SqliteStore) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    claims = []

    async def claim() -> None:
        claims.append(await store.inbound_events.claim("i", "idem-1", "sale"))

    async with trio.open_nursery() as nursery:
        for _ in range(200):
            nursery.start_soon(claim)
    assert sum(claim.fresh for claim in claims) == 1
    assert {claim.id for claim in claims} == {claims[0].id}
    assert {claim.status for claim in claims} == {"received"}


async def test_inbound_finish_and_status_seen_by_a_later_claim(store: SqliteStore) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    first = await store.inbound_events.claim("i", "k", "sale")
    await store.inbound_events.finish(first.id, "failed", "upstream 503")
    again = await store.inbound_events.claim("i", "k", "sale")
    assert (again.fresh, again.status, again.id) == (False, "failed", first.id)
    await store.inbound_events.finish(first.id, "done")
    event = await store.inbound_events.get("i", "k")
    assert event is not None
    assert (event.status, event.error, event.action) == ("done", None, "sale")
    assert event.processed_at is not None
