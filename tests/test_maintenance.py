"""The daily retention purge, on trio's virtual clock: only the holder of the `retention`
lease purges, and another replica takes over when it stops."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from sidecar.errors import StoreError
from sidecar.maintenance import RETENTION_LEASE, run_retention
from sidecar.security.cipher import AesGcmCipher
from sidecar.store.interface import Leases
from sidecar.store.records import PurgeCounts, RetentionPolicy
from sidecar.store.sqlite import SqliteStore, open_sqlite_store
from tests.conftest import CREDENTIALS_KEY_HEX
from tests.harness import trio_wall_clock

DAY = 86400.0
TTL = 3600.0
"""Long, so three virtual days take few renewals."""


class CountingStore:
    """A replica's view of the store: the real leases, and purges counted."""

    def __init__(self, leases: Leases, *, fail_first: bool = False) -> None:
        self.leases = leases
        self.purges: list[float] = []
        self.fail_next = fail_first

    async def purge_expired(self, policy: RetentionPolicy) -> PurgeCounts:
        self.purges.append(trio.current_time())
        if self.fail_next:
            self.fail_next = False
            raise StoreError("database is locked")
        return PurgeCounts({"webhook_log": 3})


@pytest.fixture
async def vstore(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A store whose clock (the leases' expiry) follows trio's virtual clock."""
    store = await open_sqlite_store(
        tmp_path / "s.sqlite",
        cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX)),
        clock=trio_wall_clock,
    )
    try:
        yield store
    finally:
        await store.aclose()


async def test_purges_after_startup_then_daily_and_survives_a_failure(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    store = CountingStore(vstore.leases, fail_first=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(
                run_retention,
                store,
                RetentionPolicy(),
                owner="replica-a:1:x",
                lease_ttl_seconds=TTL,
            )
        )
        await trio.sleep(3 * DAY + 400)
        nursery.cancel_scope.cancel()
    assert store.purges == [300.0, 300.0 + DAY, 300.0 + 2 * DAY, 300.0 + 3 * DAY]


async def test_only_the_holder_of_the_retention_lease_purges(
    mock_clock: trio.testing.MockClock, vstore: SqliteStore
) -> None:
    first, second = CountingStore(vstore.leases), CountingStore(vstore.leases)
    async with trio.open_nursery() as nursery:
        holder = trio.CancelScope()

        async def replica_a() -> None:
            with holder:
                await run_retention(
                    first, RetentionPolicy(), owner="replica-a:1:x", lease_ttl_seconds=TTL
                )

        nursery.start_soon(replica_a)
        await trio.testing.wait_all_tasks_blocked()
        await nursery.start(
            functools.partial(
                run_retention,
                second,
                RetentionPolicy(),
                owner="replica-b:2:y",
                lease_ttl_seconds=TTL,
            )
        )
        await trio.sleep(2 * DAY + 400)
        assert first.purges == [300.0, 300.0 + DAY, 300.0 + 2 * DAY]
        assert second.purges == []  # standing by
        lease = await vstore.leases.get(RETENTION_LEASE)
        assert lease is not None
        assert lease.owner.startswith("replica-a:1:x/")
        holder.cancel()  # replica a stops (its lease released on the way out)
        stopped = trio.current_time()
        await trio.sleep(DAY)
        nursery.cancel_scope.cancel()
    assert len(first.purges) == 3
    # b took over within one standby period (300 s), and purged 300 s later, then daily.
    assert len(second.purges) == 1
    assert stopped + 300 < second.purges[0] <= stopped + 600
