"""`[provisioning]`, and the app's dynamic plan read with the same rules."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.declaration import ProvisioningPlan, parse_provisioning_plan
from sidecar.declaration.model import DataSourceSpec, OrderStatusSpec
from sidecar.errors import DeclarationError, DeclarationProblem
from tests.declaration.helpers import declare, only_problem, reasons


def source(key: str, **extra: str) -> str:
    fields = "".join(f'{name} = "{value}"\n' for name, value in extra.items())
    return f'[[provisioning.data_sources]]\nkey = "{key}"\nlabel = "{key}"\ntype = "pos"\n{fields}'


def definition(name: str, *fields: str, relationships: str = "") -> str:
    declared = ", ".join(f'{{ name = "{field}", type = "text" }}' for field in fields)
    return (
        f'[[provisioning.custom_data]]\nname = "{name}"\nfields = [{declared}]\n'
        f"relationships = [{relationships}]\n"
    )


def custom_link(field: str, target: str) -> str:
    return (
        f'{{ source_field = "{field}", target_schema_type = "custom", target_schema = "{target}" }}'
    )


# --- data sources ---------------------------------------------------------------------


def test_data_sources_read_into_the_model() -> None:
    declaration = declare(
        source("acme")
        + source("web", parent="acme", stable_key="channel")
        + 'config = { channel = "web", depth = 2 }\n'
    )
    web = declaration.provisioning.plan.data_sources[1]
    assert web == DataSourceSpec(
        key="web",
        label="web",
        type="pos",
        parent="acme",
        config={"channel": "web", "depth": 2},
        stable_key="channel",
    )


def test_data_source_keys_are_unique() -> None:
    problem = only_problem(source("acme") + source("acme"))
    assert problem.path == "provisioning.data_sources[1].key"
    assert "data source key 'acme' is declared twice" in problem.reason


def test_a_parent_is_declared_earlier_in_the_plan() -> None:
    problem = only_problem(source("web", parent="acme") + source("acme"))
    assert problem.path == "provisioning.data_sources[0].parent"
    assert problem.reason.startswith("'acme' is declared later (data_sources[1])")
    assert "move the parent before its children" in problem.reason


def test_a_parent_names_a_declared_source() -> None:
    problem = only_problem(source("web", parent="amce"))
    assert problem.path == "provisioning.data_sources[0].parent"
    assert "no data source 'amce' is declared before this one" in problem.reason


def test_a_source_is_not_its_own_parent() -> None:
    problem = only_problem(source("web", parent="web"))
    assert problem.reason == "a source cannot be its own parent"


def test_a_stable_key_is_a_key_of_the_config() -> None:
    problem = only_problem(source("web", stable_key="chanel") + 'config = { channel = "web" }\n')
    assert problem.path == "provisioning.data_sources[0].stable_key"
    assert problem.reason.startswith("'chanel' is not a key of this source's `config` table")
    assert "(config has: channel)" in problem.reason


# --- custom data ----------------------------------------------------------------------


def test_custom_data_names_are_unique_trimmed_and_case_insensitive() -> None:
    problem = only_problem(definition("Cards", "a") + definition(" cards ", "a"))
    assert problem.path == "provisioning.custom_data[1].name"
    assert "definition name (trimmed, case-insensitive) 'cards' is declared twice" in (
        problem.reason
    )


def test_custom_field_names_are_unique() -> None:
    problem = only_problem(definition("cards", "number", "number"))
    assert problem.path == "provisioning.custom_data[0].fields[1].name"
    assert "field name 'number' is declared twice" in problem.reason


def test_custom_field_types_come_from_the_list() -> None:
    problem = only_problem(
        '[[provisioning.custom_data]]\nname = "cards"\nfields = [{ name = "n", type = "string" }]\n'
    )
    assert problem.path == "provisioning.custom_data[0].fields[0].type"
    assert problem.reason.startswith("unknown value 'string'; expected one of bool, text,")
    assert "geolocation" in problem.reason


def test_unique_keys_name_declared_fields() -> None:
    problem = only_problem(definition("cards", "number") + 'unique_keys = ["numbr"]\n')
    assert problem.path == "provisioning.custom_data[0].unique_keys[0]"
    assert problem.reason == "'numbr' is not a field of this definition (number)"


def test_relationship_source_fields_name_declared_fields() -> None:
    link = (
        '{ source_field = "customer", target_schema_type = "system", target_schema = "customers" }'
    )
    problem = only_problem(definition("cards", "number", relationships=link))
    assert problem.path == "provisioning.custom_data[0].relationships[0].source_field"
    assert problem.reason.startswith("'customer' is not a field of this definition")


def test_a_custom_relationship_may_target_a_sibling_or_an_existing_definition() -> None:
    declaration = declare(
        definition("programs", "code")
        + definition(
            "cards",
            "program",
            "legacy",
            relationships=custom_link("program", "Programs")
            + ", "
            + custom_link("legacy", "created_elsewhere"),
        )
    )
    assert len(declaration.provisioning.plan.custom_data[1].relationships) == 2


def test_a_relationship_cycle_between_siblings_is_named() -> None:
    problem = only_problem(
        definition("cards", "program", relationships=custom_link("program", "programs"))
        + definition("programs", "card", relationships=custom_link("card", "cards"))
    )
    assert problem.path == "provisioning.custom_data[0].relationships[0].target_schema"
    assert problem.reason.startswith(
        "relationship cycle between custom data definitions: cards → programs → cards"
    )


def test_longer_cycles_and_self_links_are_named_too() -> None:
    found = reasons(
        definition("a", "x", relationships=custom_link("x", "b"))
        + definition("b", "x", relationships=custom_link("x", "c"))
        + definition("c", "x", relationships=custom_link("x", "a"))
        + definition("d", "x", relationships=custom_link("x", "d"))
    )
    assert "a → b → c → a" in found["provisioning.custom_data[0].relationships[0].target_schema"]
    assert "d → d" in found["provisioning.custom_data[3].relationships[0].target_schema"]


# --- events and order statuses --------------------------------------------------------


def test_events_need_a_code_name_and_a_name() -> None:
    found = reasons("[[provisioning.events]]\nproperties = []\n")
    assert set(found) == {"provisioning.events[0].code_name", "provisioning.events[0].name"}


@pytest.mark.parametrize(("status_id", "expected"), [('"paid"', "paid"), ("7", 7)])
def test_an_order_status_id_is_a_string_or_an_integer(status_id: str, expected: object) -> None:
    declaration = declare(
        f'[[provisioning.order_statuses]]\nstatus_id = {status_id}\nlang = "fr"\nname = "Payée"\n'
    )
    assert declaration.provisioning.plan.order_statuses[0] == OrderStatusSpec(
        status_id=expected,  # type: ignore[arg-type]
        lang="fr",
        name="Payée",
    )


@pytest.mark.parametrize("status_id", ["true", "7.5", "[7]"])
def test_an_order_status_id_is_nothing_else(status_id: str) -> None:
    problem = only_problem(
        f'[[provisioning.order_statuses]]\nstatus_id = {status_id}\nlang = "fr"\nname = "P"\n'
    )
    assert problem.path == "provisioning.order_statuses[0].status_id"
    assert problem.reason.startswith("expected a string or an integer, got ")


# --- the app's dynamic plan -----------------------------------------------------------

ORIGIN = "app POST /provisioning"


def dynamic_problems(data: Any, base: ProvisioningPlan | None = None) -> list[DeclarationProblem]:
    with pytest.raises(DeclarationError) as caught:
        parse_provisioning_plan(data, origin=ORIGIN, base=base)
    assert all(p.file == ORIGIN for p in caught.value.problems)
    return list(caught.value.problems)


def test_a_dynamic_plan_reads_into_the_model() -> None:
    plan = parse_provisioning_plan(
        {
            "data_sources": [{"key": "store-1", "label": "Paris", "type": "store"}],
            "custom_data": [{"name": "visits", "fields": [{"name": "at", "type": "datetime"}]}],
            "events": [{"code_name": "visit", "name": {"fr": "Visite", "en": "Visit"}}],
            "order_statuses": [{"status_id": 3, "lang": "en", "name": "Shipped"}],
        },
        origin=ORIGIN,
    )
    assert plan.data_sources[0].key == "store-1"
    assert plan.custom_data[0].fields[0].type == "datetime"
    assert plan.order_statuses[0].status_id == 3


def test_a_dynamic_plan_has_no_dynamic_key_and_follows_the_same_rules() -> None:
    found = dynamic_problems(
        {
            "dynamic": True,
            "data_sources": [{"key": "s", "label": "S", "type": "store", "parent": "nope"}],
            "custom_data": [{"name": "c", "unique_keys": ["x"]}],
        }
    )
    assert {(p.path, p.reason.split(";")[0]) for p in found} == {
        ("dynamic", "unknown key 'dynamic'"),
        (
            "data_sources[0].parent",
            "no data source 'nope' is declared before this one",
        ),
        ("custom_data[0].unique_keys[0]", "'x' is not a field of this definition (it has none)"),
    }


def test_a_dynamic_plan_that_is_not_an_object_is_one_problem() -> None:
    [problem] = dynamic_problems([{"key": "s"}])
    assert (problem.path, problem.reason) == ("", "expected an object, got an array")
    [problem] = dynamic_problems({"data_sources": [None]})
    assert (problem.path, problem.reason) == ("data_sources[0]", "expected an object, got null")


def test_a_dynamic_plan_refers_to_the_static_plan_without_redeclaring_it() -> None:
    static = declare(
        source("acme") + definition("cards", "program", relationships=custom_link("program", "p"))
    ).provisioning.plan
    ok = parse_provisioning_plan(
        {"data_sources": [{"key": "store-1", "label": "Paris", "type": "store", "parent": "acme"}]},
        origin=ORIGIN,
        base=static,
    )
    assert ok.data_sources[0].parent == "acme"
    found = dynamic_problems(
        {
            "data_sources": [{"key": "acme", "label": "Again", "type": "pos"}],
            "custom_data": [
                {"name": "Cards"},
                {
                    "name": "p",
                    "fields": [{"name": "card", "type": "text"}],
                    "relationships": [
                        {
                            "source_field": "card",
                            "target_schema_type": "custom",
                            "target_schema": "cards",
                        }
                    ],
                },
            ],
        },
        base=static,
    )
    assert {p.path: p.reason for p in found} == {
        "data_sources[0].key": "'acme' is already a static data source",
        "custom_data[0].name": "'Cards' is already a static definition",
        "custom_data[1].relationships[0].target_schema": (
            "relationship cycle between custom data definitions: cards → p → cards; definitions "
            "are created in dependency order, so one of these links must go"
        ),
    }
