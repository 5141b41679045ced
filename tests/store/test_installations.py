"""Installations: COALESCE upsert, status stamps, the external account."""

from __future__ import annotations

from sidecar.store import InstallationUpsert
from sidecar.store.sqlite import SqliteStore
from tests.conftest import FakeClock


async def test_upsert_never_overwrites_with_null(store: SqliteStore, clock: FakeClock) -> None:
    await store.installations.upsert(
        InstallationUpsert(
            installation_id="inst_1",
            status="inactive",
            shop_domain="demo.example",
            shop_name="Demo",
            installed_at="2026-11-26T09:00:00.000Z",
        )
    )
    clock.advance(minutes=5)
    await store.installations.upsert(
        InstallationUpsert(installation_id="inst_1", status="inactive")
    )
    row = await store.installations.get("inst_1")
    assert row is not None
    assert (row.shop_domain, row.shop_name) == ("demo.example", "Demo")
    assert row.installed_at == "2026-11-26T09:00:00.000Z"
    assert row.created_at == "2026-11-26T09:00:00.000Z"
    assert row.updated_at == "2026-11-26T09:05:00.000Z"
    await store.installations.upsert(
        InstallationUpsert(installation_id="inst_1", status="inactive", shop_name="Renamed")
    )
    renamed = await store.installations.get("inst_1")
    assert renamed is not None
    assert (renamed.shop_domain, renamed.shop_name) == ("demo.example", "Renamed")


async def test_status_keeps_earlier_stamps(store: SqliteStore) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="inactive"))
    assert await store.installations.set_status(
        "i", "active", activated_at="2026-11-26T10:00:00.000Z"
    )
    assert await store.installations.set_status(
        "i", "inactive", deactivated_at="2026-11-27T10:00:00.000Z"
    )
    row = await store.installations.get("i")
    assert row is not None
    assert row.status == "inactive"
    assert row.activated_at == "2026-11-26T10:00:00.000Z"
    assert row.deactivated_at == "2026-11-27T10:00:00.000Z"
    assert not await store.installations.set_status("unknown", "active")


async def test_external_account(store: SqliteStore) -> None:
    await store.installations.upsert(InstallationUpsert(installation_id="i", status="inactive"))
    assert await store.installations.set_external_account("i", "acct-77", "Bistro 77")
    row = await store.installations.get("i")
    assert row is not None
    assert (row.external_account_ref, row.external_account_name) == ("acct-77", "Bistro 77")
    assert not await store.installations.set_external_account("nobody", "x")


async def test_list_filters_and_pages(store: SqliteStore, clock: FakeClock) -> None:
    for index in range(5):
        clock.advance(seconds=1)
        await store.installations.upsert(
            InstallationUpsert(installation_id=f"i{index}", status="inactive")
        )
    await store.installations.set_status("i3", "active")
    assert [i.installation_id for i in await store.installations.list()] == [
        "i0",
        "i1",
        "i2",
        "i3",
        "i4",
    ]
    assert [i.installation_id for i in await store.installations.list(status="active")] == ["i3"]
    assert await store.installations.count() == 5
    assert await store.installations.count(status="active") == 1
    assert await store.installations.count(status="uninstalled") == 0
    assert [i.installation_id for i in await store.installations.list(limit=2, offset=1)] == [
        "i1",
        "i2",
    ]
    # absurd bounds are clamped, never an error
    assert len(await store.installations.list(limit=10**9, offset=-5)) == 5
    assert len(await store.installations.list(limit=0)) == 1
