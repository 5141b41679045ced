"""Atomic claims: webhook anti-replay and inbound dedup, under real concurrency."""

from __future__ import annotations

import trio

from sidecar.security.cipher import SecretCipher
from sidecar.store import InstallationUpsert
from sidecar.store.interface import Store
from sidecar.store.records import ReplicaRegistration
from tests.backends import Backend
from tests.conftest import FakeClock

STALE_SECONDS = 180.0


ALIVE_SECONDS = 30.0


async def _claim(store: Store, iid: str = "i", key: str = "sig", by: str | None = None) -> bool:
    return await store.webhook_claims.claim(
        iid, key, claimed_by=by, stale_after_seconds=STALE_SECONDS
    )


async def _register(store: Store, replica_id: str) -> None:
    await store.replicas.register(
        ReplicaRegistration(
            id=replica_id, version="1", host="h", pid=1, alive_seconds=ALIVE_SECONDS
        )
    )


async def test_200_concurrent_webhook_claims_one_fresh(store: Store) -> None:
    results: list[bool] = []

    async def claim() -> None:
        results.append(await _claim(store, "inst_1", "sig-abc"))

    async with trio.open_nursery() as nursery:
        for _ in range(200):
            nursery.start_soon(claim)
    assert len(results) == 200
    assert results.count(True) == 1


async def test_release_lets_a_resend_be_processed(store: Store) -> None:
    assert await _claim(store)
    assert not await _claim(store)
    assert await _claim(store, "other")  # keyed per installation
    await store.webhook_claims.release("i", "sig")
    assert await _claim(store)


async def test_a_completed_claim_is_never_retaken(store: Store, clock: FakeClock) -> None:
    assert await _claim(store)
    await store.webhook_claims.complete("i", "sig")
    assert not await _claim(store)
    clock.advance(days=1)
    assert not await _claim(store)
    assert not await store.webhook_claims.claim("i", "sig", claimed_by="x", stale_after_seconds=0)


async def test_an_uncompleted_claim_is_retaken_once_stale(store: Store, clock: FakeClock) -> None:
    # Its process died mid-run: neither released nor completed.
    assert await _claim(store)
    clock.advance(seconds=STALE_SECONDS - 1)
    assert not await _claim(store)  # maybe still running: a replay
    clock.advance(seconds=2)
    assert await _claim(store)  # stale: the resend is processed
    assert not await _claim(store)  # retaken now: fresh again
    clock.advance(seconds=STALE_SECONDS - 1)
    assert not await _claim(store)  # the retake's age counts, not the first claim's
    clock.advance(seconds=2)
    await store.webhook_claims.complete("i", "sig")
    assert not await _claim(store)


async def test_concurrent_retakes_of_a_stale_claim_one_wins(
    store: Store, backend: Backend, cipher: SecretCipher, clock: FakeClock
) -> None:
    assert await _claim(store)
    clock.advance(seconds=STALE_SECONDS + 1)
    other = await backend.open(cipher=cipher, clock=clock)  # a second replica
    results: list[bool] = []

    async def retake(replica: Store) -> None:
        results.append(await _claim(replica))

    try:
        async with trio.open_nursery() as nursery:
            for n in range(100):
                nursery.start_soon(retake, store if n % 2 else other)
    finally:
        await other.aclose()
    assert len(results) == 100
    assert results.count(True) == 1


async def test_a_live_replicas_claim_is_retaken_only_once_stale(
    store: Store, clock: FakeClock
) -> None:
    await _register(store, "a")
    assert await _claim(store, by="a")
    for _ in range(int(STALE_SECONDS // 10) - 1):
        clock.advance(seconds=10)
        assert await store.replicas.heartbeat("a")
        assert not await _claim(store, by="b")  # a is alive: maybe still running it
    clock.advance(seconds=10)
    assert await store.replicas.heartbeat("a")
    assert await _claim(store, by="b")  # stale: the fallback, even for a live replica


async def test_a_dead_replicas_claim_is_retaken_at_once(store: Store, clock: FakeClock) -> None:
    await _register(store, "a")
    assert await _claim(store, by="a")
    clock.advance(seconds=ALIVE_SECONDS - 1)
    assert not await _claim(store, by="b")  # still alive by its last heartbeat
    clock.advance(seconds=1)
    assert await _claim(store, by="b")  # past alive_until: a is dead, long before stale
    await _register(store, "b")
    assert not await _claim(store, by="c")  # b is alive: its retake holds
    await store.webhook_claims.complete("i", "sig")
    await store.replicas.stopped("b")
    clock.advance(days=1)
    assert not await _claim(store, by="c")  # completed: never retaken


async def test_a_stopped_replicas_claim_is_retaken_at_once(store: Store, clock: FakeClock) -> None:
    await _register(store, "a")
    assert await _claim(store, by="a")
    assert not await _claim(store, by="b")
    await store.replicas.stopped("a")
    assert await _claim(store, by="b")


async def test_a_restarted_replicas_claim_is_retaken_at_once(
    store: Store, clock: FakeClock
) -> None:
    await _register(store, "a")
    assert await _claim(store, by="a")
    clock.advance(seconds=1)
    assert not await _claim(store, by="a")  # the same incarnation: a replay
    await _register(store, "a")  # killed, started again with the same REPLICA_ID
    assert await _claim(store, by="a")  # the new incarnation processes the resend
    clock.advance(seconds=1)
    assert not await _claim(store, by="b")  # its own claim, made after it started


async def test_an_unknown_replicas_claim_is_retaken_at_once(store: Store) -> None:
    assert await _claim(store, by="never-registered")
    assert await _claim(store, by="b")
    assert await _claim(store, key="old")  # a claim without a claimer goes stale only
    assert not await _claim(store, key="old", by="b")


async def test_concurrent_retakes_of_a_dead_replicas_claim_one_wins(
    store: Store, backend: Backend, cipher: SecretCipher, clock: FakeClock
) -> None:
    await _register(store, "dead")
    assert await _claim(store, by="dead")
    await store.replicas.stopped("dead")
    other = await backend.open(cipher=cipher, clock=clock)  # a second replica
    results: list[bool] = []

    async def retake(replica: Store, replica_id: str) -> None:
        results.append(await _claim(replica, by=replica_id))

    try:
        await _register(store, "a")
        await _register(other, "b")
        async with trio.open_nursery() as nursery:
            for n in range(100):
                nursery.start_soon(retake, *((store, "a") if n % 2 else (other, "b")))
    finally:
        await other.aclose()
    assert len(results) == 100
    assert results.count(True) == 1


async def test_200_concurrent_inbound_claims_one_fresh(store: Store) -> None:
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


async def test_inbound_finish_and_status_seen_by_a_later_claim(store: Store) -> None:
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
