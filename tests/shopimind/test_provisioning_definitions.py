"""Provisioning custom data definitions (PROTOCOL §4)."""

from __future__ import annotations

from typing import Any

import httpx
import trio.testing

from sidecar.declaration.model import (
    CustomDataSpec,
    CustomFieldSpec,
    ProvisioningPlan,
    RelationshipSpec,
)
from sidecar.shopimind.client import ShopimindApi, ShopimindClient
from sidecar.shopimind.definition_plan import prepare_definitions
from sidecar.shopimind.provisioning import provision
from sidecar.testing.shopimind_api import FakeShopimind


def field(name: str, type: Any = "text", **extra: Any) -> CustomFieldSpec:  # noqa: A002
    return CustomFieldSpec(name=name, type=type, **extra)


def rel(source: str, target: str, kind: Any = "custom", **extra: Any) -> RelationshipSpec:
    return RelationshipSpec(
        source_field=source, target_schema_type=kind, target_schema=target, **extra
    )


def definition(name: str, *fields: str, **extra: Any) -> CustomDataSpec:
    return CustomDataSpec(name=name, fields=tuple(field(f) for f in fields), **extra)


def plan(*definitions: CustomDataSpec) -> ProvisioningPlan:
    return ProvisioningPlan(custom_data=definitions)


def calls(fake: FakeShopimind) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests]


# --- before any network call --------------------------------------------------------------


async def test_invalid_definitions_are_refused_before_any_call(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    bad_key = definition("Visits", "at", unique_keys=("id",))
    bad_rel = definition("Cards", "number", relationships=(rel("owner", "customers", "system"),))
    outcome = await provision(api, plan(bad_key, bad_rel))
    assert outcome.errors == (
        "custom data 'Visits': unique key 'id' is not a declared field",
        "custom data 'Cards': relationship source field 'owner' is not a declared field",
    )
    assert fake.requests == type(fake.requests)()  # not even a listing
    assert outcome.provisioned == 0


def test_duplicates_blank_names_and_twice_declared_fields_are_refused() -> None:
    prepared = prepare_definitions(
        [
            definition("Visits", "at"),
            definition(" visits ", "at"),
            definition("  ", "x"),
            CustomDataSpec(name="Dup", fields=(field("a"), field("a"))),
        ]
    )
    assert [spec.name for spec in prepared.ordered] == ["Visits"]
    assert prepared.errors == (
        "custom data ' visits ': declared twice in the plan (names compare trimmed, "
        "case-insensitive)",
        "custom data '  ': the name is empty",
        "custom data 'Dup': field 'a' is declared twice",
    )


def test_definitions_are_ordered_by_dependency_and_cycles_are_errors() -> None:
    prepared = prepare_definitions(
        [
            definition("Cards", "shop", relationships=(rel("shop", "Shops"),)),
            definition("A", "b", relationships=(rel("b", "B"),)),
            definition("B", "a", relationships=(rel("a", "a"),)),
            definition("C", "a", relationships=(rel("a", "A"),)),
            definition("Shops", "code"),
            definition("Tree", "parent", relationships=(rel("parent", "Tree"),)),
        ]
    )
    assert [spec.name for spec in prepared.ordered] == ["Shops", "Cards", "Tree", "C"]
    assert prepared.errors == (
        "custom data 'A': dependency cycle ('A' -> 'B' -> 'A')",
        "custom data 'B': dependency cycle ('B' -> 'A' -> 'B')",
    )


# --- create ---------------------------------------------------------------------------


async def test_a_missing_definition_is_created_trimmed_then_activated(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    spec = CustomDataSpec(
        name="  Loyalty cards ",
        description="Cards of the loyalty program",
        unique_keys=("number",),
        fields=(
            field("number"),
            field("points", "number", label="Points", required=True, default=0),
            field("tier", "list", description="Tier", options=("silver", "gold")),
        ),
        relationships=(rel("number", "customers", "system", target_field="loyalty_number"),),
    )
    outcome = await provision(api, plan(spec))
    assert outcome.errors == ()
    assert outcome.warnings == ()
    (created,) = fake.requests_to("custom-data-definitions", method="POST")
    assert created.json == {
        "name": "Loyalty cards",
        "description": "Cards of the loyalty program",
        "unique_keys": ["number"],
        "fields": [
            {"name": "number", "label": "number", "type": "text", "required": False},
            {"name": "points", "label": "Points", "type": "number", "required": True, "default": 0},
            {
                "name": "tier",
                "label": "tier",
                "type": "list",
                "required": False,
                "description": "Tier",
                "options": ["silver", "gold"],
            },
        ],
        "relationships": [
            {
                "sourceField": "number",
                "targetSchemaType": "system",
                "targetSchema": "customers",
                "targetField": "loyalty_number",
            }
        ],
    }
    ident = outcome.def_ids["  Loyalty cards "]
    assert isinstance(ident, int)
    assert calls(fake)[-1] == ("PATCH", f"custom-data-definitions/{ident}/activate")
    assert fake.definitions[ident]["status"] == "active"


async def test_activation_answering_409_is_fine(api: ShopimindApi, fake: FakeShopimind) -> None:
    fake.fail_next(1, status=409, method="PATCH")
    outcome = await provision(api, plan(definition("Visits", "at")))
    assert outcome.errors == ()
    assert list(outcome.def_ids) == ["Visits"]


async def test_a_failed_activation_is_an_error_but_the_id_is_kept(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(1, status=500, method="PATCH")
    outcome = await provision(api, plan(definition("Visits", "at")))
    assert list(outcome.def_ids) == ["Visits"]
    (error,) = outcome.errors
    assert error.startswith("custom data 'Visits': ShopiMind PATCH /v1/custom-data-definitions/")
    assert (
        len(fake.requests_to(f"custom-data-definitions/{outcome.def_ids['Visits']}/activate")) == 1
    )


async def test_siblings_are_created_first_and_targeted_by_id(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    cards = definition("Cards", "shop", relationships=(rel("shop", "shops"),))
    outcome = await provision(api, plan(cards, definition("Shops", "code")))
    posts = fake.requests_to("custom-data-definitions", method="POST")
    assert [p.json["name"] for p in posts] == ["Shops", "Cards"]
    assert posts[1].json["relationships"][0]["targetSchema"] == str(outcome.def_ids["Shops"])
    assert outcome.errors == ()


async def test_a_cycle_is_an_error_and_the_rest_goes_on(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    outcome = await provision(
        api,
        plan(
            definition("A", "b", relationships=(rel("b", "B"),)),
            definition("B", "a", relationships=(rel("a", "A"),)),
            definition("D", "a", relationships=(rel("a", "A"),)),
            definition("Free", "x"),
        ),
    )
    assert list(outcome.def_ids) == ["Free"]
    assert outcome.errors == (
        "custom data 'A': dependency cycle ('A' -> 'B' -> 'A')",
        "custom data 'B': dependency cycle ('B' -> 'A' -> 'B')",
        "custom data 'D': it depends on 'A', which was not provisioned",
    )


async def test_a_definition_depending_on_a_failed_sibling_is_skipped(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    broken = definition("Shops", "code", unique_keys=("nope",))
    cards = definition("Cards", "shop", relationships=(rel("shop", "Shops"),))
    outcome = await provision(api, plan(broken, cards))
    assert outcome.def_ids == {}
    assert (
        outcome.errors[-1]
        == "custom data 'Cards': it depends on 'Shops', which was not provisioned"
    )
    assert not fake.requests_to("custom-data-definitions", method="POST")


async def test_a_self_relationship_is_added_once_the_id_is_known(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    tree = definition("Categories", "code", "parent", relationships=(rel("parent", "Categories"),))
    outcome = await provision(api, plan(tree))
    ident = outcome.def_ids["Categories"]
    assert "relationships" not in fake.requests_to("custom-data-definitions", method="POST")[0].json
    (extend,) = fake.requests_to(f"custom-data-definitions/{ident}/extend")
    assert extend.json == {
        "relationships": [
            {"sourceField": "parent", "targetSchemaType": "custom", "targetSchema": str(ident)}
        ]
    }
    assert outcome.errors == ()


async def test_a_custom_target_outside_the_plan_is_sent_as_declared_with_a_warning(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    shops = fake.add_definition("Shops", fields=["code"])
    outcome = await provision(
        api,
        plan(
            definition("Cards", "shop", relationships=(rel("shop", str(shops)),)),
            definition("Visits", "shop", relationships=(rel("shop", "Elsewhere"),)),
        ),
    )
    assert outcome.warnings == (
        "custom data 'Visits': relationship 'shop' targets 'Elsewhere', which is neither a "
        "definition of this plan nor an id: sent as declared",
    )
    assert list(outcome.def_ids) == ["Cards"]  # the fake refuses an unknown target
    assert "target custom data definition Elsewhere not found" in outcome.errors[0]


# --- find and extend --------------------------------------------------------------------


async def test_an_existing_definition_is_matched_by_trimmed_case_insensitive_name(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    ident = fake.add_definition("loyalty CARDS", fields=["number"])
    outcome = await provision(api, plan(definition(" Loyalty cards", "number")))
    assert outcome.def_ids == {" Loyalty cards": ident}
    assert calls(fake) == [
        ("GET", "custom-data-definitions"),
        ("GET", f"custom-data-definitions/{ident}"),
    ]


async def test_the_best_row_wins_and_deleted_rows_are_skipped(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.add_definition("Visits", status="deleted", fields=["at"])
    fake.add_definition("Visits", status="editing", fields=["at"])
    inactive = fake.add_definition("Visits", status="inactive", fields=["at"])
    active = fake.add_definition("Visits", status="active", fields=["at"])
    fake.add_definition("Visits", status="active", fields=["at"])
    outcome = await provision(api, plan(definition("Visits", "at")))
    assert outcome.def_ids == {"Visits": active}
    assert outcome.warnings == ()
    fake.definitions[active]["status"] = "deleted"
    fake.definitions[active + 1]["status"] = "deleted"
    outcome = await provision(api, plan(definition("Visits", "at")))
    assert outcome.def_ids == {"Visits": inactive}
    assert outcome.warnings == (
        f"custom data 'Visits': definition {inactive} is 'inactive', not active: ShopiMind "
        "rejects its records until it is activated",
    )


async def test_only_deleted_rows_means_create(api: ShopimindApi, fake: FakeShopimind) -> None:
    old = fake.add_definition("Visits", status="deleted", fields=["at"])
    outcome = await provision(api, plan(definition("Visits", "at")))
    assert outcome.def_ids["Visits"] != old
    assert outcome.errors == ()


async def test_the_listing_asks_for_100_rows(api: ShopimindApi, fake: FakeShopimind) -> None:
    for index in range(14):
        fake.add_definition(f"Old {index}", status="deleted", fields=["x"])
    live = fake.add_definition("Visits", fields=["at"])
    outcome = await provision(api, plan(definition("Visits", "at")))
    assert outcome.def_ids == {"Visits": live}
    assert fake.requests[0].query == {"limit": "100"}


async def test_missing_fields_and_relationships_are_added_by_extend(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    ident = fake.add_definition(
        "Cards",
        fields=["number", "shop"],
        relationships=[{"sourceField": "shop", "targetSchemaType": "system", "targetSchema": "x"}],
    )
    spec = definition(
        "Cards",
        "number",
        "shop",
        "owner",
        relationships=(rel("shop", "stores", "system"), rel("owner", "customers", "system")),
    )
    outcome = await provision(api, plan(spec))
    assert outcome.def_ids == {"Cards": ident}
    (extend,) = fake.requests_to(f"custom-data-definitions/{ident}/extend")
    assert extend.json == {
        "fields": [{"name": "owner", "label": "owner", "type": "text", "required": False}],
        "relationships": [
            {"sourceField": "owner", "targetSchemaType": "system", "targetSchema": "customers"}
        ],
    }
    assert [f["name"] for f in fake.definitions[ident]["fields"]] == ["number", "shop", "owner"]
    assert not fake.requests_to(f"custom-data-definitions/{ident}/activate")


async def test_nothing_missing_means_no_extend(api: ShopimindApi, fake: FakeShopimind) -> None:
    fake.add_definition("Cards", fields=["NUMBER"])
    await provision(api, plan(definition("Cards", "number")))
    assert [method for method, _ in calls(fake)] == ["GET", "GET"]


async def test_a_stale_custom_relationship_is_an_error_not_a_silent_pass(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    shops = fake.add_definition("Shops", fields=["code"])
    cards = fake.add_definition(
        "Cards",
        fields=["shop"],
        relationships=[
            {"sourceField": "shop", "targetSchemaType": "custom", "targetSchema": "999"}
        ],
    )
    spec = definition("Cards", "shop", relationships=(rel("shop", "Shops"),))
    outcome = await provision(api, plan(spec, definition("Shops", "code")))
    assert outcome.def_ids == {"Shops": shops, "Cards": cards}
    assert outcome.errors == (
        f"custom data 'Cards': relationship 'shop' points at definition 999 but the plan "
        f"resolves it to {shops}; the API cannot update a relationship: delete and re-create "
        "'Cards' to repair it",
    )
    assert not fake.requests_to(f"custom-data-definitions/{cards}/extend")


async def test_a_definition_that_cannot_be_fetched_is_an_error(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    ident = fake.add_definition("Visits", fields=["at"])
    fake.fail_next(1, status=400, path=f"custom-data-definitions/{ident}")
    outcome = await provision(api, plan(definition("Visits", "at"), definition("Other", "x")))
    assert list(outcome.def_ids) == ["Other"]
    assert outcome.errors[0].startswith(
        f"custom data 'Visits': ShopiMind GET /v1/custom-data-definitions/{ident} failed"
    )


async def test_rows_without_an_id_are_skipped_and_schema_name_matches() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/custom-data-definitions":
            rows = [
                {"name": "Visits", "status": "active"},
                {"schema_name": "visits", "id_definition": 31, "status": "ACTIVE"},
            ]
            return httpx.Response(200, json={"statusCode": 200, "data": rows})
        assert request.url.path == "/v1/custom-data-definitions/31"
        data = {"id_definition": 31, "fields": [{"name": "at"}], "relationships": []}
        return httpx.Response(200, json={"statusCode": 200, "data": data})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = ShopimindClient(base_url="https://core.test", http=http).api("int_x")
        outcome = await provision(api, plan(definition("visits", "at")))
    assert outcome.def_ids == {"visits": 31}
    assert outcome.errors == ()
    assert outcome.warnings == ()
