"""The daily retention purge, on trio's virtual clock."""

from __future__ import annotations

import trio
import trio.testing

from sidecar.errors import StoreError
from sidecar.maintenance import run_retention
from sidecar.store.records import PurgeCounts, RetentionPolicy


class CountingStore:
    def __init__(self) -> None:
        self.purges: list[float] = []
        self.fail_next = True

    async def purge_expired(self, policy: RetentionPolicy) -> PurgeCounts:
        self.purges.append(trio.current_time())
        if self.fail_next:
            self.fail_next = False

            raise StoreError("database is locked")
        return PurgeCounts({"webhook_log": 3})


async def test_purges_after_startup_then_daily_and_survives_a_failure(
    mock_clock: trio.testing.MockClock,
) -> None:
    store = CountingStore()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_retention, store, RetentionPolicy())
        await trio.sleep(3 * 86400 + 400)
        nursery.cancel_scope.cancel()
    assert store.purges == [300.0, 300.0 + 86400, 300.0 + 2 * 86400, 300.0 + 3 * 86400]
