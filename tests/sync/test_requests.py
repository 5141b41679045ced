"""Durable sync requests: recorded in state, a full request never downgraded."""

from __future__ import annotations

from sidecar.state_keys import SYNC_REQUEST
from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore
from sidecar.sync.requests import DurableSyncRequests
from tests.conftest import FakeClock


async def test_full_request_survives_a_later_incremental_one(
    store: SqliteStore, clock: FakeClock
) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="active"))
    requests = DurableSyncRequests(store.state, clock)
    await requests.request("i", full=True)
    clock.advance(seconds=5)
    await requests.request("i", full=False)
    assert await store.state.get_json("i", SYNC_REQUEST) == {
        "full": True,
        "at": "2026-11-26T09:00:05.000Z",
    }
