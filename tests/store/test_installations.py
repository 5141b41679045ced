"""Installations: COALESCE upsert, status stamps, the external account."""

from __future__ import annotations

import pytest

from sidecar.errors import StoreError
from sidecar.store import InstallationChange, InstallationUpsert
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


# --- apply: one lifecycle webhook's writes, all or none ------------------------------------


async def test_apply_writes_every_part_in_one_go(store: SqliteStore) -> None:
    await store.installations.apply(
        InstallationChange(
            installation_id="inst_a",
            upsert=InstallationUpsert(
                installation_id="inst_a", status="inactive", shop_domain="a.example"
            ),
            status="active",
            activated_at="2026-11-26T09:00:00Z",
            external_account=("acc-1", "Acme"),
            values={"config": '{"x": 1}'},
            secrets={"access_token": "int_tok"},
            default_secrets={"inbound_secret": "insec_first"},
            merge_json={"provisioning_ids": {"sourceIds": {"a": 1}}},
        )
    )
    found = await store.installations.get("inst_a")
    assert found is not None
    assert (found.status, found.shop_domain, found.activated_at) == (
        "active",
        "a.example",
        "2026-11-26T09:00:00Z",
    )
    assert (found.external_account_ref, found.external_account_name) == ("acc-1", "Acme")
    assert await store.state.get("inst_a", "access_token") == "int_tok"
    assert await store.state.get_json("inst_a", "config") == {"x": 1}
    await store.installations.apply(
        InstallationChange(
            installation_id="inst_a",
            default_secrets={"inbound_secret": "insec_second"},
            merge_json={"provisioning_ids": {"sourceIds": {"b": 2}}},
            delete=("access_token",),
        )
    )
    assert await store.state.get("inst_a", "inbound_secret") == "insec_first"  # kept
    assert await store.state.get_json("inst_a", "provisioning_ids") == {
        "sourceIds": {"a": 1, "b": 2}
    }
    assert await store.state.get("inst_a", "access_token") is None


async def test_apply_that_fails_part_way_writes_nothing(store: SqliteStore) -> None:
    await store.installations.upsert(
        InstallationUpsert(installation_id="inst_b", status="inactive")
    )
    await store.state.set_secret("inst_b", "sealed", "s")
    failing = InstallationChange(
        installation_id="inst_b",
        status="active",
        values={"config": "{}"},
        merge_json={"sealed": {"a": 1}},  # a secret cannot be merged into: StoreError
    )
    with pytest.raises(StoreError):
        await store.installations.apply(failing)
    found = await store.installations.get("inst_b")
    assert found is not None
    assert found.status == "inactive"
    assert await store.state.get("inst_b", "config") is None
    with pytest.raises(StoreError, match="no installation 'inst_c'"):
        await store.installations.apply(
            InstallationChange(installation_id="inst_c", status="active")
        )
    assert await store.installations.get("inst_c") is None


async def test_search_by_id_name_or_domain(store: SqliteStore, clock: FakeClock) -> None:
    shops = [
        ("i0", "Bistro Paris", "bistro.example"),
        ("i1", "Café 100%", "cafe_100.example"),
        ("i2", None, None),
        ("bistro", "Other", "other.example"),
    ]
    for iid, name, domain in shops:
        clock.advance(seconds=1)
        await store.installations.upsert(
            InstallationUpsert(
                installation_id=iid, status="inactive", shop_name=name, shop_domain=domain
            )
        )
    await store.installations.set_status("i1", "active")

    async def found(text: str, **kwargs: object) -> list[str]:
        rows = await store.installations.search(text, **kwargs)  # type: ignore[arg-type]
        return [row.installation_id for row in rows]

    assert await found("") == ["i0", "i1", "i2", "bistro"]
    assert await found("bistro") == ["i0", "bistro"]  # a name or domain, or the id itself
    assert await found("BISTRO") == ["i0"]  # names ignore case; ids are opaque, exact
    assert await found("paris") == ["i0"]
    assert await found("i2") == ["i2"]  # ids match whole, not as a part
    assert await found("i") == ["i0"]  # "Bistro Paris" contains an i; "i0" is not "i"
    assert await found("100%") == ["i1"]  # % and _ are characters, not wildcards
    assert await found("%") == ["i1"]
    assert await found("e_1") == ["i1"]
    assert await found("_") == ["i1"]
    assert await found("", status="active") == ["i1"]
    assert await found("bistro", status="active") == []
    assert await found("", limit=2, offset=1) == ["i1", "i2"]
