"""Reading the declaration file: the file itself, and the rules that hold for every key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.declaration import LIFECYCLE_EVENTS, MaxRatio, load_declaration
from sidecar.errors import DeclarationError
from tests.declaration.helpers import EXAMPLE, HEAD, declare, only_problem, problems, reasons


def test_the_example_uses_every_feature_and_has_no_problem() -> None:
    declaration = load_declaration(EXAMPLE)
    assert declaration.slug == "acme-pos"
    assert declaration.source == EXAMPLE
    schema = declaration.config_schema
    assert [step.key for step in schema.steps] == ["connection", "store", "data"]
    assert schema.steps[0].on_complete is not None
    assert schema.sensitive_keys() == {"api_key"}
    assert schema.remote_resources() == ("stores",)
    assert [f.key for f in schema.all_fields() if f.owner == "integrator"] == ["acme_account_id"]
    assert declaration.provisioning.dynamic is True
    plan = declaration.provisioning.plan
    assert plan.data_sources[1].parent == "acme"
    assert plan.data_sources[1].stable_key == "channel"
    relationships = plan.custom_data[1].relationships
    assert {r.target_schema_type for r in relationships} == {"system", "custom"}
    assert [s.entity for s in declaration.sync] == [
        "customers",
        "orders",
        "loyalty_cards",
        "products",
    ]
    assert declaration.sync[1].tolerate_rejects == MaxRatio(max_ratio=0.01)
    assert declaration.sync[2].custom_data_name == "loyalty_cards"
    assert {name: a.mode for name, a in declaration.inbound.items()} == {
        "sale": "queued",
        "member": "direct",
        "card": "queued",
        "order": "queued",
    }
    assert declaration.inbound["sale"].name == "sale"
    assert declaration.hooks.forward == frozenset(LIFECYCLE_EVENTS)
    visibility = declaration.widgets[0].config_schema.fields[1].visible_when
    assert visibility is not None
    assert visibility.values == ("banner",)


def test_a_minimal_declaration_gets_the_model_defaults() -> None:
    declaration = declare()
    assert declaration.meta.name == "Demo"
    assert declaration.sync == ()
    assert dict(declaration.inbound) == {}
    assert declaration.hooks.forward == frozenset(LIFECYCLE_EVENTS)
    assert declaration.provisioning.dynamic is False


def test_a_missing_file_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "integration.toml"
    with pytest.raises(DeclarationError) as caught:
        load_declaration(path)
    [problem] = caught.value.problems
    assert (problem.file, problem.path) == (str(path), "")
    assert "no such file" in problem.reason


def test_a_toml_syntax_error_is_one_problem_with_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "integration.toml"
    path.write_text(HEAD + "\n[[sync]]\nentity = orders\n", encoding="utf-8")
    with pytest.raises(DeclarationError) as caught:
        load_declaration(path)
    [problem] = caught.value.problems
    assert problem.path == ""
    assert problem.reason.startswith("not valid TOML: ")
    assert "line 8, column 10" in problem.reason


def test_a_file_that_is_not_utf8_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "integration.toml"
    path.write_bytes(b'slug = "d\xe9mo"\n')
    with pytest.raises(DeclarationError) as caught:
        load_declaration(path)
    assert "not UTF-8" in caught.value.problems[0].reason


def test_a_problem_reads_file_path_reason() -> None:
    found = problems("""
        [[sync]]
        entity = "customers"
        target = "customers"

        [[sync]]
        entity = "others"
        target = "custmers"
    """)
    assert str(found[0]).startswith(
        "integration.toml: sync[1].target: unknown bulk resource 'custmers'; "
        "expected one of customers, customers/addresses/bulk,"
    )
    assert "vouchers or custom_data:<name>; did you mean 'customers'?" in str(found[0])


def test_unknown_keys_are_errors_with_a_suggestion() -> None:
    problem = only_problem("""
        [[sync]]
        entity = "customers"
        target = "customers"
        batchsize = 50
    """)
    assert problem.path == "sync[0].batchsize"
    assert problem.reason == "unknown key 'batchsize'; did you mean 'batch_size'?"


def test_unknown_keys_without_a_close_match_list_the_known_ones() -> None:
    problem = only_problem("[whatever]\n")
    assert problem.path == "whatever"
    assert problem.reason.startswith("unknown key 'whatever'; expected one of slug, meta,")


def test_unknown_keys_are_found_at_any_depth() -> None:
    problem = only_problem("""
        [[provisioning.custom_data]]
        name = "cards"
        fields = [{ name = "number", type = "text", requierd = true }]
    """)
    assert problem.path == "provisioning.custom_data[0].fields[0].requierd"
    assert "did you mean 'required'?" in problem.reason


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        ('slug = 3\n[meta]\nname = "D"\nversion = "1.0.0"\n', "slug", "got an integer (3)"),
        ('slug = "d"\nmeta = "Demo"\n', "meta", "expected a table, got a string ('Demo')"),
        ('slug = "d"\n[meta]\nname = "D"\nversion = 1.0\n', "meta.version", "got a float (1.0)"),
        ('slug = "d"\n[meta]\nname = true\nversion = "1.0.0"\n', "meta.name", "got a boolean"),
    ],
)
def test_wrong_types_name_the_expected_type(text: str, path: str, reason: str) -> None:
    problem = only_problem(text, head=False)
    assert problem.path == path
    assert problem.reason.startswith("expected a ")
    assert reason in problem.reason


def test_an_integer_is_never_a_boolean_nor_a_float() -> None:
    found = reasons("""
        [[sync]]
        entity = "customers"
        target = "customers"
        page_limit = true
        max_pages = 10.0
    """)
    assert found == {
        "sync[0].page_limit": "expected an integer, got a boolean (true)",
        "sync[0].max_pages": "expected an integer, got a float (10.0)",
    }


def test_missing_required_keys_are_errors() -> None:
    found = reasons('slug = "demo"\n[meta]\n', head=False)
    assert set(found) == {"meta.name", "meta.version"}
    assert found["meta.version"].startswith("missing required key (its version, x.y.z")


def test_meta_is_required() -> None:
    problem = only_problem('slug = "demo"\n', head=False)
    assert problem.path == "meta"
    assert "missing required key" in problem.reason


@pytest.mark.parametrize("slug", ["Acme", "acme pos", "acmé", ""])
def test_the_slug_is_lower_case_letters_digits_underscores_and_dashes(slug: str) -> None:
    problem = only_problem(f'slug = "{slug}"\n[meta]\nname = "D"\nversion = "1.0.0"\n', head=False)
    assert problem.path == "slug"
    assert "lower-case letters, digits" in problem.reason or "must not be empty" in problem.reason


@pytest.mark.parametrize(
    "version", ["1.0", "v1.0.0", "1.0.0-beta", "1.0.x", "\u0661.\u0662.\u0663"]
)
def test_the_version_is_x_y_z_with_digits(version: str) -> None:
    problem = only_problem(f'slug = "d"\n[meta]\nname = "D"\nversion = "{version}"\n', head=False)
    assert problem.path == "meta.version"
    assert "x.y.z with digits" in problem.reason


def test_the_name_must_not_be_blank() -> None:
    problem = only_problem('slug = "d"\n[meta]\nname = "  "\nversion = "1.0.0"\n', head=False)
    assert (problem.path, problem.reason) == ("meta.name", "must not be empty")


def test_meta_urls_are_absolute_http_urls() -> None:
    problem = only_problem(HEAD + 'icon_url = "cdn/icon.svg"\n', head=False)
    assert problem.path == "meta.icon_url"
    assert "absolute http:// or https:// URL" in problem.reason


def test_toml_dates_are_refused_where_json_is_expected() -> None:
    problem = only_problem("""
        [config_schema]
        fields = [{ key = "since", type = "datetime", label = "Since", default = 2024-01-31 }]
    """)
    assert problem.path == "config_schema.fields[0].default"
    assert "quote it as a string" in problem.reason


def test_every_mistake_of_a_file_is_reported_at_once() -> None:
    found = reasons(
        """
        slug = "Acme POS"

        [meta]
        name = "Acme POS"
        version = "1.0"
        colour = "red"

        [config_schema]
        fields = [
          { key = "sync_products", type = "checkbox", label = "Products" },
          { key = "store", type = "select", label = "Store" },
        ]

        [[widgets]]
        key = "badge"
        name = "Badge"
        targets = ["sms"]

        [[provisioning.data_sources]]
        key = "web"
        label = "Web"
        type = "ecommerce"
        parent = "acme"

        [[sync]]
        entity = "customers"
        target = "custmers"

        [[sync]]
        entity = "products"
        target = "products"
        enabled_when = "store"
        page_limit = 0

        [inbound.Sale]
        target = "trigger_event:"

        [hooks]
        forward = ["installed", "removed"]
        """,
        head=False,
    )
    assert set(found) == {
        "slug",
        "meta.version",
        "meta.colour",
        "config_schema.fields[1].options",
        "widgets[0].targets[0]",
        "provisioning.data_sources[0].parent",
        "sync[0].target",
        "sync[1].page_limit",
        "sync[1].enabled_when",
        "inbound.Sale",
        "inbound.Sale.target",
        "hooks.forward[1]",
    }
