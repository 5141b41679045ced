"""Lease conformance: acquire, renew, expiry, takeover and epochs, on both backends, with
the store's clock moved by hand (the database's clock in these tests: no real sleeps)."""

from __future__ import annotations

import json

import trio

from sidecar.clock import format_timestamp
from sidecar.store.interface import Store
from sidecar.store.records import Fence, Grant, InstallationUpsert
from tests.conftest import FakeClock

NAME = "installation:i"


def _granted(grant: Grant | None) -> Fence:
    assert grant is not None, "the lease was busy"
    return grant.fence


async def test_a_free_name_is_granted_at_epoch_1_and_is_then_busy(
    store: Store, clock: FakeClock
) -> None:
    grant = await store.leases.acquire(NAME, "a", ttl_seconds=60)
    assert grant is not None
    assert grant.fence == Fence(name=NAME, owner="a", epoch=1)
    assert grant.taken_from is None
    assert await store.leases.acquire(NAME, "b", ttl_seconds=60) is None
    lease = await store.leases.get(NAME)
    assert lease is not None
    assert (lease.name, lease.owner, lease.epoch) == (NAME, "a", 1)
    assert lease.acquired_at == format_timestamp(clock())
    clock.advance(seconds=60)
    assert lease.expires_at == format_timestamp(clock())
    assert await store.leases.get("installation:other") is None


async def test_its_holder_acquiring_again_keeps_the_epoch_and_extends_it(
    store: Store, clock: FakeClock
) -> None:
    first = _granted(await store.leases.acquire(NAME, "a", ttl_seconds=60))
    clock.advance(seconds=50)
    again = await store.leases.acquire(NAME, "a", ttl_seconds=60)
    assert again is not None
    assert again.fence == first
    assert again.taken_from is None
    clock.advance(seconds=50)  # 100 s after the first acquisition, 50 after the second
    assert await store.leases.acquire(NAME, "b", ttl_seconds=60) is None


async def test_renewal_keeps_it_and_expiry_lets_another_take_it_at_the_next_epoch(
    store: Store, clock: FakeClock
) -> None:
    a = _granted(await store.leases.acquire(NAME, "a", ttl_seconds=60))
    clock.advance(seconds=50)
    assert await store.leases.renew(a, ttl_seconds=60)
    clock.advance(seconds=50)
    assert await store.leases.acquire(NAME, "b", ttl_seconds=60) is None  # renewed: held
    clock.advance(seconds=11)
    grant = await store.leases.acquire(NAME, "b", ttl_seconds=60)  # expired: taken over
    assert grant is not None
    assert grant.fence == Fence(name=NAME, owner="b", epoch=2)
    assert grant.taken_from == "a"
    # The old holder can neither renew nor release what is no longer its own.
    assert not await store.leases.renew(a, ttl_seconds=60)
    await store.leases.release(a)
    lease = await store.leases.get(NAME)
    assert lease is not None
    assert (lease.owner, lease.epoch) == ("b", 2)
    assert await store.leases.acquire(NAME, "c", ttl_seconds=60) is None


async def test_an_expired_lease_nobody_took_is_still_renewed(
    store: Store, clock: FakeClock
) -> None:
    a = _granted(await store.leases.acquire(NAME, "a", ttl_seconds=60))
    clock.advance(seconds=120)
    assert await store.leases.renew(a, ttl_seconds=60)  # nobody else worked meanwhile
    assert await store.leases.acquire(NAME, "b", ttl_seconds=60) is None


async def test_its_holder_acquiring_after_expiry_gets_a_new_epoch(
    store: Store, clock: FakeClock
) -> None:
    _granted(await store.leases.acquire(NAME, "a", ttl_seconds=60))
    clock.advance(seconds=61)
    grant = await store.leases.acquire(NAME, "a", ttl_seconds=60)
    assert grant is not None
    assert grant.fence.epoch == 2


async def test_release_keeps_the_row_and_the_next_holder_gets_the_next_epoch(
    store: Store, clock: FakeClock
) -> None:
    a = _granted(await store.leases.acquire(NAME, "a", ttl_seconds=60))
    clock.advance(seconds=5)
    await store.leases.release(a)
    lease = await store.leases.get(NAME)
    assert lease is not None
    assert (lease.owner, lease.epoch) == ("a", 1)
    assert lease.expires_at == format_timestamp(clock())
    assert await store.leases.held() == []
    grant = await store.leases.acquire(NAME, "b", ttl_seconds=60)
    assert grant is not None
    assert grant.fence == Fence(name=NAME, owner="b", epoch=2)
    assert grant.taken_from is None  # released, not taken over
    # Its releasing holder coming back is a new holder too: the epoch only grows.
    b = grant.fence
    await store.leases.release(b)
    again = await store.leases.acquire(NAME, "b", ttl_seconds=60)
    assert again is not None
    assert again.fence.epoch == 3


async def test_a_holder_declared_dead_is_taken_over_at_once(store: Store) -> None:
    _granted(await store.leases.acquire(NAME, "host:123:x", ttl_seconds=600))
    assert (
        await store.leases.acquire(NAME, "host:456:y", ttl_seconds=600, takeover=lambda o: False)
        is None
    )
    asked: list[str] = []

    def dead(owner: str) -> bool:
        asked.append(owner)
        return owner == "host:123:x"

    grant = await store.leases.acquire(NAME, "host:456:y", ttl_seconds=600, takeover=dead)
    assert grant is not None
    assert grant.fence.epoch == 2
    assert grant.taken_from == "host:123:x"
    assert asked == ["host:123:x"]


async def test_held_lists_the_unexpired_leases_by_name(store: Store, clock: FakeClock) -> None:
    _granted(await store.leases.acquire("retention", "r", ttl_seconds=100))
    released = _granted(await store.leases.acquire("outbox:i", "o", ttl_seconds=100))
    _granted(await store.leases.acquire("installation:j", "j", ttl_seconds=10))
    _granted(await store.leases.acquire("installation:i", "i", ttl_seconds=100))
    await store.leases.release(released)
    clock.advance(seconds=10)  # installation:j expires now exactly
    held = await store.leases.held()
    assert [(lease.name, lease.owner, lease.epoch) for lease in held] == [
        ("installation:i", "i", 1),
        ("retention", "r", 1),
    ]


async def test_concurrent_acquisitions_have_one_winner(store: Store) -> None:
    winners: list[str] = []

    async def contend(owner: str) -> None:
        if await store.leases.acquire(NAME, owner, ttl_seconds=60) is not None:
            winners.append(owner)

    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(contend, f"owner-{n}")
    assert len(winners) == 1


# --- runs left running ---------------------------------------------------------------------


async def _installations(store: Store, *ids: str) -> None:
    for installation_id in ids:
        await store.installations.upsert(
            InstallationUpsert(installation_id=installation_id, status="active")
        )


async def test_close_running_closes_the_installations_running_runs_only(store: Store) -> None:
    await _installations(store, "i", "j")
    left = [await store.runs.start("i", "full", owner="dead"), await store.runs.start("i", "full")]
    done = await store.runs.start("i", "incremental")
    await store.runs.finish(done, "ok", {"sent": 1})
    other = await store.runs.start("j", "full")
    fence = _granted(await store.leases.acquire("installation:i", "new", ttl_seconds=60))
    assert await store.runs.close_running("i", "holder died", fence=fence) == 2
    for run_id in left:
        run = await store.runs.get(run_id)
        assert run is not None
        assert run.status == "interrupted"
        assert run.finished_at is not None
        assert json.loads(run.summary_json or "") == {"error": "holder died"}
    closed = await store.runs.get(done)
    still = await store.runs.get(other)
    assert closed is not None
    assert still is not None
    assert (closed.status, still.status) == ("ok", "running")
    assert await store.runs.close_running("i", "again", fence=fence) == 0


async def test_close_abandoned_closes_runs_whose_installation_lease_is_not_held(
    store: Store, clock: FakeClock
) -> None:
    await _installations(store, "held", "expired", "released", "never", "other-name")
    runs = {iid: await store.runs.start(iid, "full") for iid in ("held", "expired", "released")}
    runs["never"] = await store.runs.start("never", "incremental")
    runs["other-name"] = await store.runs.start("other-name", "incremental")
    _granted(await store.leases.acquire("installation:held", "h", ttl_seconds=100))
    _granted(await store.leases.acquire("installation:expired", "e", ttl_seconds=10))
    released = _granted(await store.leases.acquire("installation:released", "r", ttl_seconds=100))
    await store.leases.release(released)
    _granted(await store.leases.acquire("outbox:other-name", "o", ttl_seconds=100))  # not it
    finished = await store.runs.start("never", "full")
    await store.runs.finish(finished, "partial", {})
    clock.advance(seconds=10)
    assert await store.runs.close_abandoned("abandoned") == 4
    statuses = {}
    for iid, run_id in runs.items():
        run = await store.runs.get(run_id)
        assert run is not None
        statuses[iid] = run.status
        if run.status == "interrupted":
            assert json.loads(run.summary_json or "") == {"error": "abandoned"}
    assert statuses == {
        "held": "running",
        "expired": "interrupted",
        "released": "interrupted",
        "never": "interrupted",
        "other-name": "interrupted",
    }
    kept = await store.runs.get(finished)
    assert kept is not None
    assert kept.status == "partial"
    assert await store.runs.close_abandoned("abandoned") == 0
