"""`hold_lease`: renewals every TTL/3, the body's deadline TTL - TTL/6 after the last
successful renewal, LeaseLostError once a lost body has cleaned up, release on exit.

The clockwork runs on trio's MockClock against `MemoryLeases` (the `Leases` contract in
memory, expiring by trio time), so each renewal happens at an exact virtual time: the
store's thread would let the MockClock jump while a renewal is in flight. The last tests
run the same rule against the real SQLite store, whose clock follows trio's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing

from sidecar.clock import format_timestamp
from sidecar.errors import LeaseLostError, StoreError
from sidecar.metrics.hooks import NoMetrics
from sidecar.security.cipher import AesGcmCipher
from sidecar.store.interface import Leases
from sidecar.store.records import Fence, Grant, InstallationUpsert, Lease
from sidecar.store.sqlite import open_sqlite_store
from sidecar.sync.leases import LeaseBusyError, LeaseHandle, hold_lease
from tests.conftest import FakeClock
from tests.harness import TRIO_EPOCH, trio_wall_clock

NAME = "installation:i"
TTL = 30.0


def _stamp(seconds: float) -> str:
    return format_timestamp(TRIO_EPOCH + timedelta(seconds=seconds))


@dataclass
class _Row:
    owner: str
    epoch: int
    acquired: float
    expires: float
    released: bool = False


@dataclass
class MemoryLeases:
    """The `Leases` contract in memory, on trio's clock, recording every renewal."""

    rows: dict[str, _Row] = field(default_factory=dict)
    renewals: list[tuple[float, bool]] = field(default_factory=list)
    """(trio time sent, kept) of each renewal that reached the store."""
    failing: Callable[[float], bool] = lambda now: False
    """Renewals sent at a time for which this is true raise StoreError."""
    releases: list[Fence] = field(default_factory=list)

    async def acquire(
        self,
        name: str,
        owner: str,
        *,
        ttl_seconds: float,
        takeover: Callable[[str], bool] | None = None,
    ) -> Grant | None:
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        row = self.rows.get(name)
        if row is None:
            self.rows[name] = _Row(owner, 1, now, now + ttl_seconds)
            return Grant(fence=Fence(name=name, owner=owner, epoch=1), taken_from=None)
        live = row.expires > now
        if live and row.owner == owner:
            row.expires = now + ttl_seconds
            return Grant(fence=Fence(name=name, owner=owner, epoch=row.epoch), taken_from=None)
        if live and (takeover is None or not takeover(row.owner)):
            return None
        taken_from = None if row.released else row.owner
        self.rows[name] = _Row(owner, row.epoch + 1, now, now + ttl_seconds)
        return Grant(
            fence=Fence(name=name, owner=owner, epoch=row.epoch + 1), taken_from=taken_from
        )

    def _holds(self, fence: Fence) -> _Row | None:
        row = self.rows.get(fence.name)
        if row is None or (row.owner, row.epoch) != (fence.owner, fence.epoch):
            return None
        return row

    async def renew(self, fence: Fence, *, ttl_seconds: float) -> bool:
        now = trio.current_time()
        await trio.lowlevel.checkpoint()
        if self.failing(now):
            raise StoreError("the database is unreachable")
        row = self._holds(fence)
        if row is not None:
            row.expires = now + ttl_seconds
        self.renewals.append((now, row is not None))
        return row is not None

    async def release(self, fence: Fence) -> None:
        await trio.lowlevel.checkpoint()
        self.releases.append(fence)
        row = self._holds(fence)
        if row is not None:
            row.expires = trio.current_time()
            row.released = True

    async def get(self, name: str) -> Lease | None:
        await trio.lowlevel.checkpoint()
        row = self.rows.get(name)
        if row is None:
            return None
        return Lease(
            name=name,
            owner=row.owner,
            epoch=row.epoch,
            acquired_at=_stamp(row.acquired),
            expires_at=_stamp(row.expires),
        )

    async def held(self) -> list[Lease]:
        now = trio.current_time()
        leases = [await self.get(name) for name, row in self.rows.items() if row.expires > now]
        return sorted((lease for lease in leases if lease is not None), key=lambda x: x.name)

    def steal(self, name: str, owner: str = "thief") -> None:
        """Another holder takes `name` over (as after an expiry elsewhere)."""
        row = self.rows[name]
        self.rows[name] = _Row(owner, row.epoch + 1, trio.current_time(), trio.current_time() + TTL)


class CountingMetrics(NoMetrics):
    """Counts the lease hooks."""

    def __init__(self) -> None:
        self.acquired: list[bool] = []
        self.renew_failures = 0
        self.fenced_writes = 0

    def lease_acquired(self, took_over: bool) -> None:
        self.acquired.append(took_over)

    def lease_renew_failed(self) -> None:
        self.renew_failures += 1

    def lease_fenced_write(self) -> None:
        self.fenced_writes += 1


def _conforms(leases: MemoryLeases) -> Leases:
    return leases  # mypy checks MemoryLeases against the protocol here


async def _hold(
    leases: Leases,
    body: Callable[[LeaseHandle], Awaitable[object]],
    *,
    owner: str = "me:1:a",
    metrics: CountingMetrics | None = None,
) -> LeaseHandle:
    """Run `body` under `hold_lease` (TTL 30 s); return the handle it held."""
    async with hold_lease(
        leases, NAME, owner, ttl_seconds=TTL, metrics=metrics or CountingMetrics()
    ) as handle:
        await body(handle)
    return handle


async def test_it_renews_every_third_of_the_ttl_and_releases_on_exit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MemoryLeases()
    metrics = CountingMetrics()
    start = trio.current_time()
    handles: list[LeaseHandle] = []

    async def body(handle: LeaseHandle) -> None:
        handles.append(handle)
        await trio.sleep(95)

    assert await _hold(_conforms(leases), body, metrics=metrics) is handles[0]
    handle = handles[0]
    assert handle.fence == Fence(name=NAME, owner=handle.owner, epoch=1)
    assert handle.owner.startswith("me:1:a/")
    assert handle.taken_from is None
    assert [(sent - start, kept) for sent, kept in leases.renewals] == [
        (10.0 * n, True) for n in range(1, 10)
    ]
    assert leases.releases == [handle.fence]
    assert await leases.held() == []
    assert metrics.acquired == [False]
    assert metrics.renew_failures == 0


async def test_a_renewal_that_finds_the_lease_lost_stops_the_body_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MemoryLeases()
    metrics = CountingMetrics()
    start = trio.current_time()
    cleaned: list[float] = []
    holders: list[str] = []

    async def body(handle: LeaseHandle) -> None:
        holders.append(handle.owner)
        try:
            await trio.sleep(15)
            leases.steal(NAME)  # e.g. we stalled and another replica took it
            await trio.sleep(100)
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(1)  # the body's cleanup runs before the error
                cleaned.append(trio.current_time() - start)

    with pytest.raises(LeaseLostError) as lost:
        await _hold(leases, body, metrics=metrics)
    assert cleaned == [21.0]  # cancelled by the renewal at 20 s
    assert (lost.value.name, lost.value.owner, lost.value.epoch) == (NAME, holders[0], 1)
    assert "taken over" in str(lost.value)
    assert [(sent - start, kept) for sent, kept in leases.renewals] == [(10.0, True), (20.0, False)]
    assert metrics.renew_failures == 1
    lease = await leases.get(NAME)
    assert lease is not None
    assert (lease.owner, lease.epoch) == ("thief", 2)  # our release left theirs alone


async def _sleep_and_note_the_stop(start: float, stopped: list[float]) -> None:
    try:
        await trio.sleep(100)
    finally:
        stopped.append(trio.current_time() - start)


async def test_failing_renewals_stop_the_body_before_the_lease_can_expire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MemoryLeases(failing=lambda now: True)
    metrics = CountingMetrics()
    start = trio.current_time()
    stopped: list[float] = []
    with pytest.raises(LeaseLostError) as lost:
        await _hold(leases, lambda _: _sleep_and_note_the_stop(start, stopped), metrics=metrics)
    # The acquisition was sent at 0 and no renewal succeeded: stopped at TTL - TTL/6, while
    # the lease (expiring at TTL) still kept every other holder out.
    assert stopped == [TTL - TTL / 6]
    assert "not renewed in time" in str(lost.value)
    assert metrics.renew_failures == 2  # at 10 s and 20 s
    assert leases.releases  # released on the way out (it was still ours)


async def test_a_successful_renewal_moves_the_deadline_and_a_failed_one_does_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    # Fails at 10 s, succeeds at 20 s, then fails for good.
    leases = MemoryLeases(failing=lambda now: now - start != 20.0)
    stopped: list[float] = []
    with pytest.raises(LeaseLostError):
        await _hold(leases, lambda _: _sleep_and_note_the_stop(start, stopped))
    assert [sent - start for sent, _ in leases.renewals] == [20.0]
    assert stopped == [20.0 + TTL - TTL / 6]


async def _nothing(_: LeaseHandle) -> None:
    await trio.lowlevel.checkpoint()


async def _sleep_100(_: LeaseHandle) -> None:
    await trio.sleep(100)


async def _must_not_run(handle: LeaseHandle) -> None:
    raise AssertionError(f"the body ran, holding {handle.fence}")


async def test_a_busy_lease_raises_at_once_naming_its_holder(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MemoryLeases()
    metrics = CountingMetrics()
    await leases.acquire(NAME, "other:2:b/1234abcd", ttl_seconds=TTL)
    with pytest.raises(LeaseBusyError) as busy:
        await _hold(leases, _must_not_run, metrics=metrics)
    assert busy.value.holder == "other:2:b/1234abcd"
    assert metrics.acquired == []
    assert leases.releases == []


async def test_a_dead_holder_is_taken_over_and_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MemoryLeases()
    metrics = CountingMetrics()
    dead = f"{socket.gethostname()}:999999999:x/0000abcd"  # a pid that does not exist
    await leases.acquire(NAME, dead, ttl_seconds=600)
    handle = await _hold(leases, _nothing, metrics=metrics)
    assert handle.taken_from == dead
    assert handle.fence.epoch == 2
    assert metrics.acquired == [True]


async def test_two_holds_of_one_owner_are_two_holders(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MemoryLeases()
    owner = f"{socket.gethostname()}:{os.getpid()}:me"

    async def nested(_: LeaseHandle) -> None:
        with pytest.raises(LeaseBusyError):
            await _hold(leases, _must_not_run, owner=owner)

    first = await _hold(leases, nested, owner=owner)
    second = await _hold(leases, _nothing, owner=owner)
    assert second.owner != first.owner
    assert second.owner.startswith(owner + "/")
    assert second.fence.epoch == 2
    assert second.taken_from is None  # the first hold released it


async def _fail_after_15_seconds(_: LeaseHandle) -> None:
    await trio.sleep(15)
    raise KeyError("mine")


async def test_the_body_s_own_error_comes_out_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MemoryLeases()
    with pytest.raises(KeyError, match="mine"):
        await _hold(leases, _fail_after_15_seconds)
    assert len(leases.releases) == 1
    assert await leases.held() == []


async def test_an_outer_cancellation_is_not_a_lost_lease(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = MemoryLeases()
    with trio.move_on_after(15) as outer:
        await _hold(leases, _sleep_100)
    assert outer.cancelled_caught
    assert len(leases.releases) == 1


# --- on the real store -----------------------------------------------------------------------
# mock_clock (tests/conftest.py) rather than autojump_clock: it waits for the store's thread
# before jumping, so a store call does not leap over every deadline at once.


class _Unreachable:
    """The real store's leases, except that renewals fail (a partitioned replica)."""

    def __init__(self, leases: Leases) -> None:
        self._leases = leases

    async def acquire(
        self,
        name: str,
        owner: str,
        *,
        ttl_seconds: float,
        takeover: Callable[[str], bool] | None = None,
    ) -> Grant | None:
        return await self._leases.acquire(name, owner, ttl_seconds=ttl_seconds, takeover=takeover)

    async def renew(self, fence: Fence, *, ttl_seconds: float) -> bool:
        raise StoreError("the database is unreachable")

    async def release(self, fence: Fence) -> None:
        raise StoreError("the database is unreachable")

    async def get(self, name: str) -> Lease | None:
        return await self._leases.get(name)

    async def held(self) -> list[Lease]:
        return await self._leases.held()


async def test_a_partitioned_holder_stops_before_another_takes_over_and_its_writes_are_fenced(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    cipher = AesGcmCipher(bytes(32))
    # The database's clock follows trio's: the lease expires in step with the holder's clock.
    store = await open_sqlite_store(tmp_path / "s.sqlite", cipher=cipher, clock=trio_wall_clock)
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    events: list[tuple[float, str]] = []
    zombie: list[LeaseHandle] = []

    async def work(handle: LeaseHandle) -> None:
        zombie.append(handle)
        try:
            while True:
                await store.state.set("i", "progress", "a", fence=handle.fence)
                await trio.sleep(1)
        finally:
            events.append((trio.current_time(), "a stopped"))

    async def partitioned() -> None:
        with pytest.raises(LeaseLostError):
            await _hold(_Unreachable(store.leases), work, owner="a:1:x")

    async def successor() -> None:
        while True:
            grant = await store.leases.acquire(NAME, "b:2:y", ttl_seconds=TTL)
            if grant is not None:
                events.append((trio.current_time(), "b acquired"))
                assert grant.fence.epoch == 2
                assert grant.taken_from == zombie[0].owner
                await store.state.set("i", "progress", "b", fence=grant.fence)
                return
            await trio.sleep(1)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partitioned)
            await trio.sleep(1)
            nursery.start_soon(successor)
        assert [what for _, what in sorted(events)] == ["a stopped", "b acquired"]
        # The zombie waking up later commits nothing.
        with pytest.raises(LeaseLostError):
            await store.state.set("i", "progress", "a", fence=zombie[0].fence)
        assert await store.state.get("i", "progress") == "b"
    finally:
        await store.aclose()


async def test_a_takeover_in_the_store_stops_the_old_holder(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    clock = FakeClock()  # the database's clock, moved by hand
    cipher = AesGcmCipher(bytes(32))
    store = await open_sqlite_store(tmp_path / "s.sqlite", cipher=cipher, clock=clock)
    held: list[LeaseHandle] = []

    async def stall_then_wait(handle: LeaseHandle) -> None:
        held.append(handle)
        clock.advance(seconds=TTL + 1)  # we stalled past the TTL…
        grant = await store.leases.acquire(NAME, "b:2:y", ttl_seconds=TTL)
        assert grant is not None  # …and another holder took the installation
        await trio.sleep(3600)

    try:
        with pytest.raises(LeaseLostError) as lost:
            await _hold(store.leases, stall_then_wait, owner="a:1:x")
        assert lost.value.epoch == held[0].fence.epoch == 1
        lease = await store.leases.get(NAME)
        assert lease is not None
        assert (lease.owner, lease.epoch) == ("b:2:y", 2)  # untouched by our release
    finally:
        await store.aclose()


class _SlowToAnswer(MemoryLeases):
    """Grants at once, but its answer takes 5 s to come back."""

    async def acquire(
        self,
        name: str,
        owner: str,
        *,
        ttl_seconds: float,
        takeover: Callable[[str], bool] | None = None,
    ) -> Grant | None:
        grant = await super().acquire(name, owner, ttl_seconds=ttl_seconds, takeover=takeover)
        await trio.sleep(5)
        return grant


async def test_a_hold_cancelled_while_acquiring_gives_back_what_the_store_granted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leases = _SlowToAnswer()
    with trio.move_on_after(1) as cancelled:
        await _hold(leases, _must_not_run)
    assert cancelled.cancelled_caught
    lease = await leases.get(NAME)
    assert lease is not None
    assert lease.owner.startswith("me:1:a/")  # granted…
    assert await leases.held() == []  # …and given back at once
    assert [fence.owner for fence in leases.releases] == [lease.owner]
