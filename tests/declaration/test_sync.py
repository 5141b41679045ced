"""`[[sync]]` steps, `[inbound.<action>]` and `[hooks]`, and what they refer to."""

from __future__ import annotations

import pytest

from sidecar.declaration import LIFECYCLE_EVENTS, MaxRatio
from sidecar.shopimind.resources import BULK_RESOURCES
from tests.declaration.helpers import declare, only_problem, reasons

CARDS = """
[[provisioning.custom_data]]
name = "loyalty_cards"
fields = [{ name = "number", type = "text" }]

[[provisioning.data_sources]]
key = "web"
label = "Web"
type = "ecommerce"
"""
CHECKBOXES = """
[config_schema]
fields = [
  { key = "sync_products", type = "checkbox", label = "Products" },
  { key = "store", type = "select", label = "Store", options = [{ value = "1", label = "One" }] },
]
"""


def step(entity: str = "customers", target: str = "customers", **extra: str) -> str:
    lines = "".join(f"{key} = {value}\n" for key, value in extra.items())
    return f'[[sync]]\nentity = "{entity}"\ntarget = "{target}"\n{lines}'


# --- sync -----------------------------------------------------------------------------


def test_a_step_reads_into_the_model_with_defaults() -> None:
    [customers] = declare(step()).sync
    assert (customers.cursor_scope, customers.sources, customers.batch_size) == (
        "global",
        None,
        None,
    )
    assert (customers.tolerate_rejects, customers.page_limit) == (False, 500)


def test_entities_are_not_empty() -> None:
    problem = only_problem(step(entity=""))
    assert (problem.path, problem.reason) == ("sync[0].entity", "must not be empty")


def test_entities_are_unique() -> None:
    problem = only_problem(step("orders", "orders") + step("orders", "customers"))
    assert problem.path == "sync[1].entity"
    assert problem.reason == (
        "entity 'orders' is declared twice (first at sync[0]); each entity must be unique"
    )


@pytest.mark.parametrize("target", sorted(BULK_RESOURCES))
def test_every_bulk_resource_is_a_target(target: str) -> None:
    assert declare(step(target=target)).sync[0].target == target


def test_an_unknown_target_lists_the_bulk_resources() -> None:
    problem = only_problem(step(target="custmers"))
    assert problem.path == "sync[0].target"
    assert problem.reason.startswith(
        "unknown bulk resource 'custmers'; expected one of customers, customers/addresses/bulk, "
    )
    assert problem.reason.endswith("vouchers or custom_data:<name>; did you mean 'customers'?")


def test_a_custom_data_target_names_a_declared_definition() -> None:
    declaration = declare(CARDS + step("cards", "custom_data:loyalty_cards"))
    assert declaration.sync[0].custom_data_name == "loyalty_cards"
    problem = only_problem(CARDS + step("cards", "custom_data:loyalty_card"))
    assert problem.path == "sync[0].target"
    assert problem.reason.startswith(
        "no custom data definition named 'loyalty_card' in provisioning.custom_data; "
        "did you mean 'loyalty_cards'?"
    )


def test_with_a_dynamic_plan_any_custom_data_name_is_accepted() -> None:
    declaration = declare("[provisioning]\ndynamic = true\n" + step("c", "custom_data:from_app"))
    assert declaration.sync[0].custom_data_name == "from_app"
    problem = only_problem("[provisioning]\ndynamic = true\n" + step("c", "custom_data: "))
    assert problem.reason.startswith("custom_data: needs a definition name")


def test_a_target_is_not_checked_against_a_plan_that_is_itself_wrong() -> None:
    problem = only_problem(
        '[[provisioning.custom_data]]\nname = "cards"\nfields = 3\n' + step("c", "custom_data:x")
    )
    assert problem.path == "provisioning.custom_data[0].fields"


def test_cursor_scope_is_global_or_per_source() -> None:
    problem = only_problem(step(cursor_scope='"persource"'))
    assert problem.path == "sync[0].cursor_scope"
    assert problem.reason == (
        "unknown value 'persource'; expected one of global, per-source; did you mean 'per-source'?"
    )


@pytest.mark.parametrize("listing", ["app", "data_sources"])
def test_a_per_source_step_says_how_its_sources_are_listed(listing: str) -> None:
    declaration = declare(step(cursor_scope='"per-source"', sources=f'"{listing}"'))
    assert declaration.sync[0].sources == listing
    problem = only_problem(step(cursor_scope='"per-source"'))
    assert problem.path == "sync[0].sources"
    assert problem.reason.startswith("a per-source step must say how its sources are listed")


def test_a_global_step_has_no_sources() -> None:
    problem = only_problem(step(sources='"app"'))
    assert problem.path == "sync[0].sources"
    assert problem.reason.startswith("only per-source steps list sources")


def test_data_source_names_a_declared_source() -> None:
    assert declare(CARDS + step(data_source='"web"')).sync[0].data_source == "web"
    problem = only_problem(CARDS + step(data_source='"wbe"'))
    assert problem.path == "sync[0].data_source"
    assert problem.reason.startswith(
        "no data source 'wbe' in provisioning.data_sources; did you mean 'web'?"
    )
    dynamic = declare("[provisioning]\ndynamic = true\n" + step(data_source='"store-1"'))
    assert dynamic.sync[0].data_source == "store-1"


def test_enabled_when_names_a_checkbox_field() -> None:
    declaration = declare(CHECKBOXES + step(enabled_when='"sync_products"'))
    assert declaration.sync[0].enabled_when == "sync_products"
    found = reasons(
        CHECKBOXES
        + step("a", enabled_when='"sync_product"')
        + step("b", enabled_when='"store"')
        + step("c", enabled_when='"nothing_like_it"')
    )
    assert found == {
        "sync[0].enabled_when": "no config field 'sync_product'; enabled_when must name a "
        "checkbox field of config_schema; did you mean 'sync_products'?",
        "sync[1].enabled_when": "config field 'store' is a select; enabled_when must name a "
        "checkbox field (the step runs only while it is checked)",
        "sync[2].enabled_when": "no config field 'nothing_like_it'; enabled_when must name a "
        "checkbox field of config_schema; its checkbox fields are sync_products",
    }


def test_enabled_when_needs_a_config_schema() -> None:
    problem = only_problem(step(enabled_when='"sync_products"'))
    assert problem.reason.startswith("no config field 'sync_products'")


@pytest.mark.parametrize(
    ("target", "size", "reason"),
    [
        ("customers", "0", "must be at least 1; got 0"),
        ("customers", "51", "must be at most 50, the most ShopiMind takes per request for "),
        ("custom_data:loyalty_cards", "21", "must be at most 20, the most ShopiMind takes"),
    ],
)
def test_batch_size_is_from_1_to_the_chunk_size_of_the_target(
    target: str, size: str, reason: str
) -> None:
    problem = only_problem(CARDS + step(target=target, batch_size=size))
    assert problem.path == "sync[0].batch_size"
    assert problem.reason.startswith(reason)


def test_batch_size_up_to_the_chunk_size_is_fine() -> None:
    declaration = declare(step(target="customers-groups", batch_size="100"))
    assert declaration.sync[0].batch_size == 100


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("false", False), ("{ max_ratio = 0.01 }", MaxRatio(max_ratio=0.01))],
)
def test_tolerate_rejects_is_a_boolean_or_a_max_ratio(value: str, expected: object) -> None:
    assert declare(step(tolerate_rejects=value)).sync[0].tolerate_rejects == expected


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        ("{ max_ratio = 1.5 }", ".max_ratio", "must be from 0 to 1; got 1.5"),
        ("{ max_ratio = -0.1 }", ".max_ratio", "must be from 0 to 1; got -0.1"),
        ('"yes"', "", "expected true or false or a table, got a string ('yes')"),
        ("{ ratio = 0.1 }", ".ratio", "unknown key 'ratio'; did you mean 'max_ratio'?"),
    ],
)
def test_tolerate_rejects_is_nothing_else(value: str, path: str, reason: str) -> None:
    found = reasons(step(tolerate_rejects=value))
    assert found[f"sync[0].tolerate_rejects{path}"] == reason


@pytest.mark.parametrize("limit", ["0", "10001"])
def test_page_limit_is_from_1_to_10000(limit: str) -> None:
    problem = only_problem(step(page_limit=limit))
    assert problem.path == "sync[0].page_limit"
    assert problem.reason == f"must be from 1 to 10000; got {limit}"


def test_max_pages_is_at_least_1() -> None:
    problem = only_problem(step(max_pages="0"))
    assert (problem.path, problem.reason) == ("sync[0].max_pages", "must be at least 1; got 0")


def test_other_rules_of_a_step_still_run_when_one_key_is_wrong() -> None:
    found = reasons(CHECKBOXES + step(target="custmers", enabled_when='"store"', max_pages="0"))
    assert set(found) == {"sync[0].target", "sync[0].enabled_when", "sync[0].max_pages"}


def test_a_rule_is_silent_about_a_key_that_could_not_be_read() -> None:
    problem = only_problem(step(cursor_scope='"persource"', sources='"app"'))
    assert problem.path == "sync[0].cursor_scope"


# --- inbound --------------------------------------------------------------------------


def test_inbound_actions_read_into_the_model() -> None:
    declaration = declare(
        CARDS
        + """
        [inbound.sale]
        target = "trigger_event:acme_sale"

        [inbound.member]
        target = "contacts"
        mode = "direct"

        [inbound.card]
        target = "custom_data:loyalty_cards"

        [inbound.order]
        target = "orders"
        """
    )
    actions = declaration.inbound
    assert {name: (a.name, a.target, a.mode) for name, a in actions.items()} == {
        "sale": ("sale", "trigger_event:acme_sale", "queued"),
        "member": ("member", "contacts", "direct"),
        "card": ("card", "custom_data:loyalty_cards", "queued"),
        "order": ("order", "orders", "queued"),
    }


@pytest.mark.parametrize(
    ("name", "path"), [("Sale", "inbound.Sale"), ('"a sale"', 'inbound."a sale"')]
)
def test_inbound_names_are_lower_case_identifiers(name: str, path: str) -> None:
    problem = only_problem(f'[inbound.{name}]\ntarget = "contacts"\n')
    assert problem.path == path
    assert "lower-case letters, digits, '_' and '-' only" in problem.reason


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("trigger_event:", "trigger_event: needs the event's code name"),
        ("trigger_event:a sale", "trigger_event: needs the event's code name"),
        ("custom_data:cards", "no custom data definition named 'cards'"),
        ("contact", "unknown target 'contact'; expected trigger_event:<code_name>, contacts,"),
    ],
)
def test_inbound_targets_are_events_contacts_custom_data_or_bulk_resources(
    target: str, reason: str
) -> None:
    problem = only_problem(CARDS + f'[inbound.x]\ntarget = "{target}"\n')
    assert problem.path == "inbound.x.target"
    assert problem.reason.startswith(reason)


def test_inbound_mode_is_queued_or_direct() -> None:
    problem = only_problem('[inbound.x]\ntarget = "contacts"\nmode = "sync"\n')
    assert problem.path == "inbound.x.mode"
    assert problem.reason == "unknown value 'sync'; expected one of queued, direct"


def test_an_inbound_action_has_no_name_key() -> None:
    problem = only_problem('[inbound.x]\ntarget = "contacts"\nname = "y"\n')
    assert problem.path == "inbound.x.name"


# --- hooks ----------------------------------------------------------------------------


def test_without_hooks_every_lifecycle_event_is_forwarded() -> None:
    assert declare().hooks.forward == frozenset(LIFECYCLE_EVENTS)
    assert declare("[hooks]\n").hooks.forward == frozenset(LIFECYCLE_EVENTS)


def test_hooks_forward_a_subset_of_the_lifecycle_events() -> None:
    hooks = declare('[hooks]\nforward = ["activated", "uninstalled"]\n').hooks
    assert hooks.forward == {"activated", "uninstalled"}
    assert declare("[hooks]\nforward = []\n").hooks.forward == frozenset()


def test_hooks_forward_only_lifecycle_events_each_once() -> None:
    found = reasons('[hooks]\nforward = ["install", "activated", "activated"]\n')
    assert found == {
        "hooks.forward[0]": "unknown value 'install'; expected one of installed, activated, "
        "deactivated, uninstalled, config_updated; did you mean 'installed'?",
        "hooks.forward[2]": "value 'activated' is declared twice (first at hooks.forward[1]); "
        "each value must be unique",
    }
