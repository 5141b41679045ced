"""The daily retention purge, on trio's virtual clock: only the holder of the `retention`
lease purges, and another replica takes over when it stops."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import trio
import trio.testing

from sidecar.errors import StoreError
from sidecar.maintenance import RETENTION_LEASE, run_retention
from sidecar.security.cipher import AesGcmCipher
from sidecar.store.interface import Leases, Store
from sidecar.store.records import PurgeCounts, RetentionPolicy
from sidecar.store.sqlite import SqliteStore, open_sqlite_store
from tests.conftest import CREDENTIALS_KEY_HEX
from tests.harness import trio_wall_clock

DAY = 86400.0
STANDBY = 3600.0
TTL = 10 * DAY
"""Longer than the tests: no renewal is due, so MockClock's autojump (while a store call
runs in its thread) never finds the lease's deadline as the next timer."""


class CountingStore:
    """A replica's view of the store: the real leases, and purges counted (`as_store()`)."""

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

    def as_store(self) -> Store:
        """What `run_retention` takes: it uses only `leases` and `purge_expired`."""
        return cast("Store", self)


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
                store.as_store(),
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
                    first.as_store(),
                    RetentionPolicy(),
                    owner="replica-a:1:x",
                    lease_ttl_seconds=TTL,
                )

        nursery.start_soon(replica_a)
        while (lease := await vstore.leases.get(RETENTION_LEASE)) is None:  # noqa: ASYNC110
            await trio.sleep(1)
        assert lease.owner.startswith("replica-a:1:x/")
        await nursery.start(
            functools.partial(
                run_retention,
                second.as_store(),
                RetentionPolicy(),
                owner="replica-b:2:y",
                lease_ttl_seconds=TTL,
                standby_seconds=STANDBY,
            )
        )
        # No store call of the test's own from here on: MockClock's autojump may pass the
        # time while one runs in its thread, and the purge times must stay exact.
        await trio.sleep(2 * DAY + 400)
        assert first.purges == [300.0, 300.0 + DAY, 300.0 + 2 * DAY]
        assert second.purges == []  # standing by
        holder.cancel()  # replica a stops (its lease released on the way out)
        stopped = trio.current_time()
        while not second.purges:  # noqa: ASYNC110 - virtual time
            await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert len(first.purges) == 3
    # b took over at its next try (every STANDBY), and purged 300 s after taking the lease.
    assert len(second.purges) == 1
    assert stopped + 300 < second.purges[0] <= stopped + STANDBY + 300 + 60
