"""The replicas table (migration 9): registration, heartbeats on the store's clock (the
database's, in production), clean stops, the leases each replica holds, and retention."""

from __future__ import annotations

from sidecar.security.cipher import SecretCipher
from sidecar.store import RetentionPolicy
from sidecar.store.interface import Store
from sidecar.store.records import Replica, ReplicaRegistration
from tests.backends import Backend
from tests.conftest import FakeClock
from tests.store.conftest import execute


def _registration(
    replica_id: str, *, alive_seconds: float = 30.0, pid: int = 41
) -> ReplicaRegistration:
    return ReplicaRegistration(
        id=replica_id, version="1.2.3", host="web-1", pid=pid, alive_seconds=alive_seconds
    )


def _by_id(replicas: list[Replica]) -> dict[str, Replica]:
    return {replica.id: replica for replica in replicas}


async def test_a_registered_replica_is_listed_alive(store: Store, clock: FakeClock) -> None:
    assert await store.replicas.list() == []
    await store.replicas.register(_registration("web-1:41:0a1b2c3d"))
    [listed] = await store.replicas.list()
    stamp = "2026-11-26T09:00:00.000Z"
    assert listed == Replica(
        id="web-1:41:0a1b2c3d",
        version="1.2.3",
        host="web-1",
        pid=41,
        started_at=stamp,
        heartbeat_at=stamp,
        stopped_at=None,
        alive=True,
        leases_held=0,
    )


async def test_heartbeats_keep_it_alive_and_silence_ends_it(store: Store, clock: FakeClock) -> None:
    await store.replicas.register(_registration("a", alive_seconds=30))
    for _ in range(5):  # 50 s of heartbeats every 10 s: alive throughout
        clock.advance(seconds=10)
        assert await store.replicas.heartbeat("a")
        [listed] = await store.replicas.list()
        assert listed.alive
    assert listed.heartbeat_at == "2026-11-26T09:00:50.000Z"
    assert listed.started_at == "2026-11-26T09:00:00.000Z"
    clock.advance(seconds=29.9)
    assert (await store.replicas.list())[0].alive
    clock.advance(seconds=0.1)  # its window has passed without a heartbeat: dead
    assert not (await store.replicas.list())[0].alive
    assert await store.replicas.heartbeat("a")  # it was only late: alive again
    assert (await store.replicas.list())[0].alive


async def test_a_clean_stop_is_recorded_and_a_restart_registers_again(
    store: Store, clock: FakeClock
) -> None:
    await store.replicas.register(_registration("a"))
    clock.advance(seconds=5)
    await store.replicas.stopped("a")
    [stopped] = await store.replicas.list()
    assert (stopped.alive, stopped.stopped_at) == (False, "2026-11-26T09:00:05.000Z")
    assert not await store.replicas.heartbeat("a")  # stopped: it must register again
    clock.advance(seconds=5)
    await store.replicas.stopped("a")  # a second stop keeps the first stamp
    assert (await store.replicas.list())[0].stopped_at == "2026-11-26T09:00:05.000Z"
    await store.replicas.register(_registration("a", pid=42))
    [again] = await store.replicas.list()
    assert (again.alive, again.stopped_at, again.pid) == (True, None, 42)
    assert again.started_at == "2026-11-26T09:00:10.000Z"


async def test_heartbeat_of_an_unknown_replica_says_so(store: Store) -> None:
    assert not await store.replicas.heartbeat("nobody")
    assert await store.replicas.list() == []


async def test_alive_replicas_come_first_then_by_id(store: Store, clock: FakeClock) -> None:
    for replica_id in ("c", "a", "b", "d"):
        await store.replicas.register(_registration(replica_id, alive_seconds=30))
    await store.replicas.stopped("a")
    clock.advance(seconds=20)
    await store.replicas.heartbeat("d")
    clock.advance(seconds=15)  # b and c went silent 35 s ago; d heartbeat 15 s ago
    listed = await store.replicas.list()
    assert [(r.id, r.alive) for r in listed] == [
        ("d", True),
        ("a", False),
        ("b", False),
        ("c", False),
    ]


async def test_leases_held_counts_the_unexpired_leases_of_its_holders(
    store: Store, clock: FakeClock
) -> None:
    await store.replicas.register(_registration("web-1:41:aa"))
    await store.replicas.register(_registration("web-1:41:a"))  # a prefix of the first id
    await store.replicas.register(_registration("w_b"))  # `_` is a LIKE wildcard
    leases = store.leases
    assert await leases.acquire("installation:1", "web-1:41:aa/0000abcd", ttl_seconds=60)
    assert await leases.acquire("installation:2", "web-1:41:aa/1111abcd", ttl_seconds=10)
    assert await leases.acquire("outbox:1", "web-1:41:a/2222abcd", ttl_seconds=60)
    assert await leases.acquire("retention", "wxb/3333abcd", ttl_seconds=60)  # not w_b's
    held = {r.id: r.leases_held for r in await store.replicas.list()}
    assert held == {"web-1:41:aa": 2, "web-1:41:a": 1, "w_b": 0}
    clock.advance(seconds=10)  # installation:2 expired (by the store's clock)
    held = {r.id: r.leases_held for r in await store.replicas.list()}
    assert held == {"web-1:41:aa": 1, "web-1:41:a": 1, "w_b": 0}


async def test_retention_purges_replicas_silent_longer_than_the_policy(
    store: Store, clock: FakeClock
) -> None:
    await store.replicas.register(_registration("old-stopped"))
    await store.replicas.stopped("old-stopped")
    await store.replicas.register(_registration("old-dead"))
    clock.advance(days=10)
    await store.replicas.register(_registration("recent-stopped"))
    await store.replicas.stopped("recent-stopped")
    await store.replicas.register(_registration("alive"))
    clock.advance(days=25)
    await store.replicas.heartbeat("alive")
    counts = await store.purge_expired(RetentionPolicy(days=30))
    assert counts.removed["replicas"] == 2
    assert sorted(_by_id(await store.replicas.list())) == ["alive", "recent-stopped"]
    kept = await store.purge_expired(RetentionPolicy(days=0))  # 0 keeps forever
    assert kept.removed["replicas"] == 0


async def test_the_table_is_the_same_on_both_backends(store: Store) -> None:
    await store.replicas.register(_registration("a"))
    rows = await execute(
        store, "SELECT id, version, host, pid, alive_seconds, stopped_at FROM replicas"
    )
    assert rows == [("a", "1.2.3", "web-1", 41, 30.0, None)]


async def test_on_the_database_clock(backend: Backend, cipher: SecretCipher) -> None:
    # Opened on the system clock: PostgreSQL judges by its own clock_timestamp().
    store = await backend.open(cipher=cipher)
    try:
        await store.replicas.register(_registration("a", alive_seconds=3600))
        await store.replicas.register(_registration("gone", alive_seconds=0))
        assert await store.replicas.heartbeat("a")
        assert await store.leases.acquire("installation:1", "a/0000abcd", ttl_seconds=3600)
        listed = {r.id: (r.alive, r.leases_held) for r in await store.replicas.list()}
        assert listed == {"a": (True, 1), "gone": (False, 0)}
        await store.replicas.stopped("a")
        assert [r.alive for r in await store.replicas.list()] == [False, False]
    finally:
        await store.aclose()
