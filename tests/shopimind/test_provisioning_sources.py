"""Provisioning data sources: stable key, label drift, label match, create, parents."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio.testing

from sidecar.declaration.model import DataSourceSpec, ProvisioningPlan
from sidecar.outbound import RetryPolicy
from sidecar.shopimind.client import ShopimindApi, ShopimindClient
from sidecar.shopimind.provisioning import provision
from sidecar.testing.shopimind_api import FakeShopimind


def store(key: str, label: str, store_id: Any = None, **extra: Any) -> DataSourceSpec:
    config = {"store_id": store_id} if store_id is not None else {}
    return DataSourceSpec(
        key=key,
        label=label,
        type="pos",
        config=config,
        stable_key="store_id" if store_id is not None else None,
        **extra,
    )


def plan(*sources: DataSourceSpec) -> ProvisioningPlan:
    return ProvisioningPlan(data_sources=sources)


def writes(fake: FakeShopimind) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.method != "GET"]


async def test_a_missing_source_is_created_with_its_config_as_a_json_string(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    outcome = await provision(api, plan(store("main", "  Main store ", store_id=12)))
    assert outcome.errors == ()
    (created,) = fake.requests_to("data-sources", method="POST")
    assert created.json == {"label": "Main store", "type": "pos", "config": '{"store_id":12}'}
    (row,) = fake.data_sources.values()
    assert outcome.source_ids == {"main": row["id_data_source"]}
    assert outcome.to_state() == {"sourceIds": {"main": row["id_data_source"]}, "defIds": {}}
    assert outcome.provisioned == 1


async def test_a_second_run_finds_what_the_first_created(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    first = await provision(api, plan(store("main", "Main", store_id=12), store("web", "Web")))
    fake.requests.clear()
    second = await provision(api, plan(store("main", "Main", store_id=12), store("web", "Web")))
    assert second.source_ids == first.source_ids
    assert writes(fake) == []
    assert len(fake.data_sources) == 2


async def test_a_stable_key_match_survives_a_rename_and_updates_the_label(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    ident = fake.add_data_source("Old name", config={"store_id": "12"})
    outcome = await provision(api, plan(store("main", "New name", store_id=12)))
    assert outcome.source_ids == {"main": ident}
    assert writes(fake) == [("PUT", f"data-sources/{ident}")]
    assert fake.requests[-1].json == {"label": "New name"}
    assert fake.data_sources[ident]["label"] == "New name"
    assert len(fake.data_sources) == 1


async def test_a_stable_key_match_with_the_same_label_writes_nothing(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    ident = fake.add_data_source(" Main ", config={"store_id": 12})
    outcome = await provision(api, plan(store("main", "Main", store_id=12)))
    assert outcome.source_ids == {"main": ident}
    assert writes(fake) == []


async def test_a_failed_label_update_keeps_the_id_and_reports_the_error(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    ident = fake.add_data_source("Old", config={"store_id": 12})
    fake.fail_next(1, status=400, path="data-sources", method="PUT")
    outcome = await provision(api, plan(store("main", "New", store_id=12)))
    assert outcome.source_ids == {"main": ident}
    (error,) = outcome.errors
    assert error.startswith("data source 'main': ShopiMind PUT /v1/data-sources/")
    assert "HTTP 400 Bad Request: injected fault" in error


async def test_without_a_stable_key_the_trimmed_label_matches(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    ident = fake.add_data_source("  Web shop")
    outcome = await provision(api, plan(store("web", "Web shop  ")))
    assert outcome.source_ids == {"web": ident}
    assert writes(fake) == []


async def test_a_label_match_never_takes_another_stores_row(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    other = fake.add_data_source("Shop", config={"store_id": 1})
    outcome = await provision(api, plan(store("second", "Shop", store_id=2)))
    assert outcome.source_ids["second"] != other
    assert len(fake.data_sources) == 2


async def test_a_row_is_matched_once_per_run(api: ShopimindApi, fake: FakeShopimind) -> None:
    ident = fake.add_data_source("Shop")
    outcome = await provision(api, plan(store("a", "Shop"), store("b", "Shop")))
    assert outcome.source_ids["a"] == ident
    assert outcome.source_ids["b"] != ident


async def test_a_stable_key_without_a_value_warns_and_matches_the_label(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    ident = fake.add_data_source("Shop")
    spec = DataSourceSpec(key="s", label="Shop", type="pos", stable_key="store_id")
    outcome = await provision(api, plan(spec))
    assert outcome.source_ids == {"s": ident}
    assert outcome.warnings == (
        "data source 's': stable key 'store_id' has no value in its config; matching on the "
        "label only",
    )


async def test_a_parent_key_resolves_to_the_parent_id(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    outcome = await provision(
        api,
        plan(store("group", "Group"), store("shop", "Shop", parent="group")),
    )
    child = fake.requests_to("data-sources", method="POST")[1]
    assert child.json["parent_id"] == outcome.source_ids["group"]


async def test_an_unresolved_parent_is_an_error_for_the_child_only(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    outcome = await provision(
        api,
        plan(store("shop", "Shop", parent="group"), store("group", "Group"), store("x", "X")),
    )
    assert set(outcome.source_ids) == {"group", "x"}
    (error,) = outcome.errors
    assert error.startswith("data source 'shop': its parent 'group' was not provisioned before it")


async def test_a_key_declared_twice_is_an_error(api: ShopimindApi, fake: FakeShopimind) -> None:
    outcome = await provision(api, plan(store("a", "A"), store("a", "B")))
    assert outcome.errors == ("data source 'a': declared twice in the plan",)
    assert len(fake.data_sources) == 1


async def test_a_failed_listing_is_one_error_and_nothing_is_created(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(1, status=403, path="data-sources")
    outcome = await provision(api, plan(store("a", "A"), store("b", "B")))
    assert outcome.source_ids == {}
    (error,) = outcome.errors
    assert error.startswith("data sources: cannot list the shop's sources: ShopiMind GET")
    assert "HTTP 403 Forbidden" in error
    assert writes(fake) == []


async def test_ids_are_read_from_id_when_id_data_source_is_absent() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            rows = [{"id": 77, "label": "Found", "config": "not json"}]
            return httpx.Response(200, json={"statusCode": 200, "data": rows})
        sent.append(json.loads(request.content))
        return httpx.Response(201, json={"statusCode": 201, "data": {"id": "88"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = ShopimindClient(
            base_url="https://core.test", http=http, policy=RetryPolicy(max_retries=0)
        ).api("int_x")
        outcome = await provision(
            api, plan(store("found", "Found", store_id=5), store("new", "New"))
        )
    assert outcome.source_ids == {"found": 77, "new": "88"}
    assert outcome.errors == ()
    assert [body["label"] for body in sent] == ["New"]


async def test_a_created_source_without_an_id_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"statusCode": 200, "data": []})
        return httpx.Response(201, json={"statusCode": 201, "data": {"label": "x"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = ShopimindClient(base_url="https://core.test", http=http).api("int_x")
        outcome = await provision(api, plan(store("x", "X")))
    assert outcome.errors == (
        "data source 'x': the created source's answer carries no id_data_source or id",
    )
    assert outcome.provisioned == 0
