"""PostgreSQL restarted during a sync (`pg_ctl restart` of the test cluster): the run ends
(or fails cleanly and the next one carries on), the cursor never passes data ShopiMind did
not get, and /health turns degraded while the server is away and recovers by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from sidecar.errors import StoreError
from sidecar.health import check_health
from sidecar.security.cipher import AesGcmCipher
from sidecar.store.interface import Store
from sidecar.store.postgres.store import PostgresStore, open_postgres_store
from sidecar.sync.leases import LeaseBusyError
from sidecar.testing.vendor_app import Dataset
from tests.conftest import FakeClock
from tests.postgres import PostgresCluster, new_schema
from tests.sync.conftest import INSTALLATION, SyncEnv, step

ITEMS = 3_000


@pytest.fixture
async def store(
    postgres_server: PostgresCluster, cipher: AesGcmCipher, clock: FakeClock
) -> AsyncIterator[PostgresStore]:
    """The sync suite's store, on PostgreSQL (overrides the SQLite one)."""
    if not postgres_server.owned:
        pytest.skip("SIDECAR_TEST_POSTGRES_URL: the tests cannot restart that server")
    opened = await open_postgres_store(
        postgres_server.url, schema=new_schema(), cipher=cipher, clock=clock
    )
    try:
        yield opened
    finally:
        await opened.aclose()


async def _healthy_again(store: Store, tries: int = 10) -> list[str]:
    """The /health db field, asked until it is ok (a dead pooled connection fails once)."""
    seen = []
    for _ in range(tries):
        report = await check_health(store, scheduled=False)
        seen.append(str(report.body["db"]))
        if report.healthy:
            break
    return seen


async def test_health_follows_the_server_down_and_back(
    store: PostgresStore, postgres_server: PostgresCluster
) -> None:
    assert (await check_health(store, scheduled=False)).healthy
    await trio.to_thread.run_sync(postgres_server.stop)
    try:
        down = await check_health(store, scheduled=False)
        assert not down.healthy
        assert down.body["db"] == "error"
    finally:
        await trio.to_thread.run_sync(postgres_server.start)
    seen = await _healthy_again(store)
    assert seen[-1] == "ok", seen


async def test_a_restart_during_a_sync_loses_nothing(
    env: SyncEnv, postgres_server: PostgresCluster
) -> None:
    env.app.set_dataset("customers", Dataset(count=ITEMS))
    await env.activate()
    engine = env.engine(step(page_limit=100))
    outcome: list[str] = []

    async def first_run() -> None:
        try:
            report = await engine.sync(INSTALLATION, full=True)
            outcome.append(report.status)
        except* StoreError as group:  # the store failed mid-run: a clean failure
            outcome.append(f"store error: {group.exceptions[0]}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first_run)
        # Restart once a few pages went through: the sync is in the middle of its window.
        while env.api.count("customers") < 500:  # noqa: ASYNC110 - the fake has no event
            await trio.sleep(0.005)
        await trio.to_thread.run_sync(postgres_server.restart)
    assert outcome, "the interrupted run never ended"
    await _healthy_again(env.store)  # the dead pooled connections fail once each
    if await env.cursor_value("customers") is not None:
        # The first run moved the cursor: then every item of its window had arrived.
        assert len({item["id"] for item in env.api.items("customers")}) == ITEMS
    # Whatever the first run made of it, the next runs carry on to the end.
    statuses: list[str] = []
    for _ in range(5):
        try:
            statuses.append((await engine.sync(INSTALLATION)).status)
        except* (StoreError, LeaseBusyError):
            statuses.append("error")
        if statuses[-1] == "ok":
            break
    received = {item["id"] for item in env.api.items("customers")}
    assert received == {f"item-{i}" for i in range(ITEMS)}
    assert await env.cursor_value("customers") is not None
    runs = await env.store.runs.recent(INSTALLATION)
    assert all(run.status != "running" for run in runs)
