"""Leases on PostgreSQL: the server's clock judges expiry whatever the hosts' clocks say,
and of several replicas racing for one name exactly one wins, the epoch growing by one."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import trio

from sidecar.clock import Clock, parse_timestamp, system_clock
from sidecar.security.cipher import AesGcmCipher
from sidecar.store import InstallationUpsert
from sidecar.store.postgres.store import PostgresStore, open_postgres_store
from sidecar.store.records import Grant
from tests.backends import Backend
from tests.conftest import FakeClock
from tests.store.postgres._locks import table_barrier, wait_for_lock_waiters

RACERS = 6
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@asynccontextmanager
async def replicas(
    backend: Backend, cipher: AesGcmCipher, clocks: list[Clock], *, database_clock: bool | None
) -> AsyncIterator[list[PostgresStore]]:
    """One store per clock on the test's schema: separate pools, as separate hosts have."""
    stores: list[PostgresStore] = []
    try:
        for clock in clocks:
            stores.append(
                await open_postgres_store(
                    backend.url,
                    schema=backend.schema,
                    cipher=cipher,
                    clock=clock,
                    pool_size=2,
                    database_clock=database_clock,
                )
            )
        yield stores
    finally:
        for store in stores:
            await store.aclose()


def _server_now(url: str) -> datetime:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    moment: datetime = row[0]
    return moment.astimezone(UTC)


async def test_expiry_is_judged_by_the_database_clock(
    backend: Backend, cipher: AesGcmCipher
) -> None:
    async with replicas(backend, cipher, [system_clock], database_clock=None) as (store,):
        grant = await store.leases.acquire("installation:i", "a/1", ttl_seconds=60)
        assert grant is not None
        assert grant.fence.epoch == 1
        assert await store.leases.acquire("installation:i", "b/1", ttl_seconds=60) is None
        held = await store.leases.get("installation:i")
        assert held is not None
        assert re.fullmatch(STAMP, held.acquired_at)
        assert re.fullmatch(STAMP, held.expires_at)
        assert held.expires_at > held.acquired_at
        # A hold renewed into the past has expired by the server's clock: taken over.
        assert await store.leases.renew(grant.fence, ttl_seconds=-1)
        taken = await store.leases.acquire("installation:i", "b/1", ttl_seconds=60)
        assert taken is not None
        assert (taken.fence.epoch, taken.taken_from) == (2, "a/1")
        assert not await store.leases.renew(grant.fence, ttl_seconds=60)


async def test_the_database_clock_rules_when_the_hosts_clocks_disagree(
    backend: Backend, cipher: AesGcmCipher
) -> None:
    # Host a's clock is an hour slow, host b's an hour fast; both use the server's clock.
    slow = FakeClock(datetime.now(UTC) - timedelta(hours=1))
    fast = FakeClock(datetime.now(UTC) + timedelta(hours=1))
    async with replicas(backend, cipher, [slow, fast], database_clock=True) as (a, b):
        await a.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
        before = await trio.to_thread.run_sync(_server_now, backend.url)
        grant = await a.leases.acquire("installation:i", "a/1", ttl_seconds=60)
        after = await trio.to_thread.run_sync(_server_now, backend.url)
        assert grant is not None
        lease = await a.leases.get("installation:i")
        assert lease is not None
        # Stamped by the server (to the millisecond), not by a's slow clock.
        floor = before.replace(microsecond=before.microsecond // 1000 * 1000)
        assert floor <= parse_timestamp(lease.acquired_at) <= after
        assert floor + timedelta(seconds=60) <= parse_timestamp(lease.expires_at)
        assert parse_timestamp(lease.expires_at) <= after + timedelta(seconds=60)

        # b's clock says the lease expired an hour ago: the server's says it is held.
        assert await b.leases.acquire("installation:i", "b/1", ttl_seconds=60) is None
        assert [held.owner for held in await b.leases.held()] == ["a/1"]
        run_id = await a.runs.start("i", "full", fence=grant.fence)
        assert await b.runs.close_abandoned("interrupted: no holder") == 0
        run = await b.runs.get(run_id)
        assert run is not None
        assert run.status == "running"

        # The switch is what protects: judged by b's own clock, the lease looks expired.
        async with replicas(backend, cipher, [fast], database_clock=False) as (host_clock,):
            assert await host_clock.runs.close_abandoned("interrupted: no holder") == 1
            taken = await host_clock.leases.acquire("installation:i", "c/1", ttl_seconds=60)
            assert taken is not None
            assert taken.taken_from == "a/1"


async def _race(
    stores: list[PostgresStore], backend: Backend, name: str, round_: int
) -> list[Grant]:
    """Every store asks for `name` at the same instant (released together from a lock on
    the table); return the grants."""
    grants: list[Grant | None] = []

    async def acquire(store: PostgresStore, n: int) -> None:
        grants.append(await store.leases.acquire(name, f"r{n}/{round_}", ttl_seconds=60))

    async with (
        trio.open_nursery() as nursery,
        table_barrier(backend.url, backend.schema, "leases"),
    ):
        for n, store in enumerate(stores):
            nursery.start_soon(acquire, store, n)
        await trio.to_thread.run_sync(
            wait_for_lock_waiters, backend.url, backend.schema, "leases", len(stores)
        )
    return [grant for grant in grants if grant is not None]


async def test_of_replicas_racing_for_a_lease_exactly_one_wins(
    backend: Backend, cipher: AesGcmCipher
) -> None:
    name = "installation:i"
    async with replicas(backend, cipher, [system_clock] * RACERS, database_clock=True) as stores:
        # A name never held: every racer inserts its row, one insert wins.
        (first,) = await _race(stores, backend, name, 1)
        assert (first.fence.epoch, first.taken_from) == (1, None)

        # Expired: every racer finds it free, one takes it over, the others see its epoch.
        assert await stores[0].leases.renew(first.fence, ttl_seconds=-1)
        (second,) = await _race(stores, backend, name, 2)
        assert (second.fence.epoch, second.taken_from) == (2, first.fence.owner)

        # Released: free again, taken by one, from nobody.
        await stores[0].leases.release(second.fence)
        (third,) = await _race(stores, backend, name, 3)
        assert (third.fence.epoch, third.taken_from) == (3, None)

        lease = await stores[0].leases.get(name)
        assert lease is not None
        assert (lease.owner, lease.epoch) == (third.fence.owner, 3)
