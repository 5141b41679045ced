"""`store copy` carries the leases with their epochs: the fences handed out on SQLite keep
their meaning on PostgreSQL, and the next takeover continues the count."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.errors import LeaseLostError
from sidecar.security.cipher import AesGcmCipher
from sidecar.store import InstallationUpsert
from sidecar.store.copy import copy_store
from sidecar.store.postgres.store import open_postgres_store
from sidecar.store.sqlite import open_sqlite_store
from tests.conftest import FakeClock
from tests.postgres import PostgresCluster, new_schema

NAMES = ("installation:a", "outbox:a", "retention")


async def test_store_copy_keeps_the_lease_epochs(
    tmp_path: Path, cipher: AesGcmCipher, clock: FakeClock, postgres_server: PostgresCluster
) -> None:
    path = tmp_path / "sidecar.sqlite"
    lite = await open_sqlite_store(path, cipher=cipher, clock=clock)
    try:
        await lite.installations.upsert(InstallationUpsert(installation_id="a", status="active"))
        first = await lite.leases.acquire("installation:a", "x/1", ttl_seconds=60)
        assert first is not None
        await lite.leases.release(first.fence)
        held = await lite.leases.acquire("installation:a", "y/1", ttl_seconds=60)
        assert held is not None
        assert held.fence.epoch == 2
        assert await lite.leases.acquire("outbox:a", "y/2", ttl_seconds=60) is not None
        retention = await lite.leases.acquire("retention", "y/3", ttl_seconds=60)
        assert retention is not None
        await lite.leases.release(retention.fence)
        before = [await lite.leases.get(name) for name in NAMES]
    finally:
        await lite.aclose()

    schema = new_schema()
    report = await copy_store(
        path, postgres_server.url, schema=schema, applied_at="x", progress=lambda *_: None
    )
    assert report.counts["leases"] == len(NAMES)
    copied = await open_postgres_store(
        postgres_server.url, schema=schema, cipher=cipher, clock=clock
    )
    try:
        assert [await copied.leases.get(name) for name in NAMES] == before
        assert [lease.name for lease in await copied.leases.held()] == list(NAMES[:2])
        # The holder's fence still holds; the earlier holder's is still stale.
        await copied.state.set("a", "k", "v", fence=held.fence)
        with pytest.raises(LeaseLostError):
            await copied.state.set("a", "k", "late", fence=first.fence)
        assert await copied.state.get("a", "k") == "v"
        # The count goes on from the copied epochs.
        clock.advance(seconds=61)
        taken = await copied.leases.acquire("installation:a", "z/1", ttl_seconds=60)
        assert taken is not None
        assert (taken.fence.epoch, taken.taken_from) == (3, "y/1")
        again = await copied.leases.acquire("retention", "z/2", ttl_seconds=60)
        assert again is not None
        assert (again.fence.epoch, again.taken_from) == (2, None)
    finally:
        await copied.aclose()
