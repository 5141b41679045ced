"""Fenced writes on PostgreSQL: a fenced write and a takeover of its lease never both
succeed out of order, and a stale write in a group-committed batch fails alone."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from sidecar.errors import LeaseLostError, StoreError
from sidecar.security.cipher import AesGcmCipher
from sidecar.store import InstallationUpsert
from sidecar.store.postgres.leases import check_fence
from sidecar.store.postgres.store import PostgresStore
from sidecar.store.records import Fence, Grant
from tests.backends import Backend
from tests.conftest import FakeClock
from tests.store.postgres._locks import wait_for_lock_waiters

NAME = "installation:i"
TTL = 30


@pytest.fixture
async def other(backend: Backend, cipher: AesGcmCipher, clock: FakeClock) -> AsyncIterator[Any]:
    """A second replica on the same schema (its own pool, its own write lane)."""
    opened = await backend.open(cipher=cipher, clock=clock)
    try:
        yield opened
    finally:
        await opened.aclose()


async def _held_by_a(store: PostgresStore, clock: FakeClock) -> Fence:
    """Installation `i`, its lease held by `a/1` at epoch 1 and expired since."""
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    grant = await store.leases.acquire(NAME, "a/1", ttl_seconds=TTL)
    assert grant is not None
    assert grant.fence.epoch == 1
    clock.advance(seconds=2 * TTL)
    return grant.fence


def _blocker(entered: trio.Event, gate: threading.Event) -> Callable[[Any], None]:
    """An operation that signals it runs, then keeps its transaction open until `gate`."""

    def block(connection: Any) -> None:
        trio.from_thread.run_sync(entered.set)
        if not gate.wait(20):
            raise TimeoutError("the test never opened the gate")

    return block


async def test_a_takeover_waits_for_the_commit_of_a_fenced_write(
    store: PostgresStore, other: PostgresStore, backend: Backend, clock: FakeClock
) -> None:
    stale = await _held_by_a(store, clock)
    checked, gate = trio.Event(), threading.Event()

    def fenced_write(connection: Any) -> None:
        check_fence(connection, stale)  # still ours: the lease row is now locked FOR SHARE
        trio.from_thread.run_sync(checked.set)
        if not gate.wait(20):
            raise TimeoutError("the test never opened the gate")
        connection.execute("INSERT INTO installation_state VALUES ('i', 'k', 'by a', 0, 'now')")

    taken: list[object] = []

    async def take_over() -> None:
        taken.append(await other.leases.acquire(NAME, "b/1", ttl_seconds=TTL))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.db.write, fenced_write)
        await checked.wait()
        nursery.start_soon(take_over)
        # The takeover is stuck behind a's lock, however long a takes to commit.
        await trio.to_thread.run_sync(
            wait_for_lock_waiters, backend.url, backend.schema, "leases", 1
        )
        assert taken == []
        gate.set()
    (grant,) = taken
    assert grant is not None
    assert (grant.fence.epoch, grant.taken_from) == (2, "a/1")  # type: ignore[attr-defined]
    assert await store.state.get("i", "k") == "by a"  # committed before the takeover
    # From now on a's writes are refused and change nothing.
    with pytest.raises(LeaseLostError) as lost:
        await store.state.set("i", "k", "late", fence=stale)
    assert (lost.value.name, lost.value.owner, lost.value.epoch) == (NAME, "a/1", 1)
    assert await store.state.get("i", "k") == "by a"


async def test_a_fenced_write_waits_for_a_takeover_and_sees_the_new_epoch(
    store: PostgresStore, other: PostgresStore, backend: Backend, clock: FakeClock
) -> None:
    stale = await _held_by_a(store, clock)
    busy, entered = trio.Event(), trio.Event()
    lane, gate = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    async def record(key: str, call: Awaitable[object]) -> None:
        try:
            outcomes[key] = await call
        except (LeaseLostError, StoreError) as exc:
            outcomes[key] = exc

    async with trio.open_nursery() as nursery:
        # b's real takeover runs in one batch with a blocker queued behind it: the lease row
        # is updated, the transaction left open until the gate.
        nursery.start_soon(other.db.write, _blocker(busy, lane))
        await busy.wait()
        nursery.start_soon(record, "takeover", other.leases.acquire(NAME, "b/1", ttl_seconds=TTL))
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(other.db.write, _blocker(entered, gate))
        await trio.testing.wait_all_tasks_blocked()
        lane.set()
        await entered.wait()
        # a's fenced write waits for b's transaction, then reads b's epoch: refused.
        nursery.start_soon(
            record,
            "write",
            store.cursors.record_success(
                "i", "customers", "", synced_at="2026-11-26T09:00:00.000Z", items=5, fence=stale
            ),
        )
        await trio.to_thread.run_sync(
            wait_for_lock_waiters, backend.url, backend.schema, "leases", 1
        )
        assert "write" not in outcomes
        gate.set()
    assert isinstance(outcomes["write"], LeaseLostError)
    assert await store.cursors.get("i", "customers") is None
    grant = outcomes["takeover"]
    assert isinstance(grant, Grant)
    assert grant.fence == Fence(name=NAME, owner="b/1", epoch=2)


async def test_a_stale_write_in_a_batch_rolls_back_alone_and_reaches_only_its_caller(
    store: PostgresStore, clock: FakeClock
) -> None:
    stale = await _held_by_a(store, clock)
    grant = await store.leases.acquire(NAME, "b/1", ttl_seconds=TTL)
    assert grant is not None
    fresh = grant.fence
    busy, lane = trio.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    async def record(key: str, call: Awaitable[object]) -> None:
        try:
            outcomes[key] = await call
        except (LeaseLostError, StoreError) as exc:
            outcomes[key] = exc

    def half_written(connection: Any) -> None:
        # Writes first, then finds its fence stale: the write must not survive.
        connection.execute(
            "INSERT INTO installation_state VALUES ('i', 'half', 'written', 0, 'now')"
        )
        check_fence(connection, stale)

    before = store.db.batches_committed
    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.db.write, _blocker(busy, lane))
        await busy.wait()
        # Everything below queues behind the blocker, so it goes in ONE batch.
        for n in range(10):
            nursery.start_soon(record, f"set{n}", store.state.set("i", f"k{n}", "v", fence=fresh))
        nursery.start_soon(record, "unfenced", store.state.set("i", "plain", "v"))
        nursery.start_soon(
            record,
            "stale cursor",
            store.cursors.record_success(
                "i", "customers", "", synced_at="2026-11-26T09:00:00.000Z", items=5, fence=stale
            ),
        )
        nursery.start_soon(record, "half", store.db.write(half_written))
        nursery.start_soon(record, "stale take", store.state.take("i", "k0", fence=stale))
        await trio.testing.wait_all_tasks_blocked()
        lane.set()
    assert store.db.batches_committed - before == 2  # the blocker's, then everyone's
    for key in ("stale cursor", "half", "stale take"):
        assert type(outcomes.pop(key)) is LeaseLostError  # as raised, not a StoreError
    assert all(value is None for value in outcomes.values()), outcomes
    keys = {entry.key for entry in await store.state.keys("i")}
    assert keys == {f"k{n}" for n in range(10)} | {"plain"}
    assert await store.cursors.get("i", "customers") is None


async def test_a_stale_write_alone_is_rolled_back(store: PostgresStore, clock: FakeClock) -> None:
    stale = await _held_by_a(store, clock)
    assert await store.leases.acquire(NAME, "b/1", ttl_seconds=TTL) is not None

    def half_written(connection: Any) -> None:
        connection.execute(
            "INSERT INTO installation_state VALUES ('i', 'half', 'written', 0, 'now')"
        )
        check_fence(connection, stale)

    with pytest.raises(LeaseLostError):
        await store.db.write(half_written)
    assert await store.state.keys("i") == []
    # The connection went back clean: the next write on it works.
    await store.state.set("i", "after", "v")
    assert await store.state.get("i", "after") == "v"


async def test_a_fence_for_a_lease_never_held_is_refused(store: PostgresStore) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    with pytest.raises(LeaseLostError):
        await store.runs.start("i", "full", fence=Fence(name=NAME, owner="a/1", epoch=1))
    assert await store.runs.recent("i") == []
