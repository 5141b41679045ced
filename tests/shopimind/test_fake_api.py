"""The fake ShopiMind API behaves like the real one where the sidecar depends on it."""

from __future__ import annotations

import pytest
import trio.testing

from sidecar.errors import ShopimindError
from sidecar.outbound import new_http_client
from sidecar.shopimind.client import ShopimindApi, ShopimindClient
from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind


async def test_a_listing_limit_above_100_falls_back_to_10(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    for index in range(12):
        fake.add_definition(f"D{index}", fields=["x"])
    assert len(await api.get_rows("custom-data-definitions", params={"limit": 101})) == 10
    assert len(await api.get_rows("custom-data-definitions")) == 10
    assert len(await api.get_rows("custom-data-definitions", params={"limit": 100})) == 12


async def test_a_deleted_definition_is_listed_but_not_served(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    ident = fake.add_definition("Visits", fields=["at"])
    await api.delete(f"custom-data-definitions/{ident}")
    assert [row["status"] for row in await api.list_custom_data_definitions()] == ["deleted"]
    with pytest.raises(ShopimindError, match="400 Bad Request: Custom data definition not found"):
        await api.get_custom_data_definition(ident)


async def test_a_name_in_use_cannot_be_created_again(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.add_definition("Visits", fields=["at"])
    with pytest.raises(ShopimindError, match="name is already used"):
        await api.create_custom_data_definition(
            {"name": " visits", "fields": [{"name": "at", "type": "text"}]}
        )


async def test_records_are_checked_against_their_definition(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    active = fake.add_definition(
        "Visits", fields=[{"name": "at", "type": "datetime", "required": True}]
    )
    result = await api.push_custom_records(active, [{"at": "2026-01-01"}, {"shop": "x"}])
    assert (result.sent, result.rejected) == (1, 1)
    assert result.rejected_items[0].reason == "field 'at' is required"
    inactive = fake.add_definition("Cards", status="inactive", fields=["n"])
    result = await api.push_custom_records(inactive, [{"n": "1"}])
    assert result.rejected_items[0].reason == "custom data definition is not active"
    result = await api.push_custom_records(999, [{"n": "1"}])
    assert result.transport_failed
    assert "404 Not Found" in result.errors[0]


async def test_a_chunk_above_the_resource_size_is_refused(api: ShopimindApi) -> None:
    result = await api.push("customers", [{"id": i} for i in range(51)], chunk_size=51)
    assert result.transport_failed
    assert "at most 50 items per request; got 51" in result.errors[0]


async def test_a_repeated_idempotency_key_gets_the_first_answer(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    first = await api.post("contacts", {"email": "a@b.test"}, idempotency_key="same")
    again = await api.post("contacts", {"email": "a@b.test"}, idempotency_key="same")
    assert first == again
    assert first.status == 201
    assert len(fake.contacts) == 1


async def test_unknown_routes_answer_404(api: ShopimindApi) -> None:
    with pytest.raises(ShopimindError, match="404 Not Found: Cannot GET /v1/carts"):
        await api.get("carts")


async def test_the_module_docstring_example(mock_clock: trio.testing.MockClock) -> None:
    customers = [{"email": "a@x.test"}, {"email": "broken"}]
    fake = FakeShopimind(tokens={"int_token"})
    fake.reject_when(lambda resource, item: None if "@" in str(item.get("email")) else "bad email")
    fake.fail_next(2, status=429, retry_after=3, path="customers")
    async with running(fake) as base_url, new_http_client() as http:
        api = ShopimindClient(base_url=base_url, http=http).api("int_token")
        result = await api.push("customers", customers, idempotency_key="page-1")
    assert fake.count("customers") == result.sent == 1
    assert result.rejected == 1
    assert [r.path for r in fake.requests][:3] == ["customers"] * 3
