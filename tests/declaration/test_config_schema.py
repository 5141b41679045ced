"""`[config_schema]`: layout, field types, selects, owners, wizard steps, labels."""

from __future__ import annotations

import pytest

from sidecar.declaration.model import RemoteOptions, SelectOption
from tests.declaration.helpers import declare, only_problem, reasons

FIELD = '{ key = "a", type = "text", label = "A" }'


def test_a_schema_is_steps_fields_or_groups_one_kind_only() -> None:
    problem = only_problem(f"""
        [config_schema]
        fields = [{FIELD}]

        [[config_schema.steps]]
        key = "one"
        label = "One"
    """)
    assert problem.path == "config_schema.fields"
    assert problem.reason.startswith("cannot be used together with 'steps'")
    assert "use only one of steps, fields, groups" in problem.reason


def test_groups_are_a_layout_too() -> None:
    declaration = declare(f"""
        [[config_schema.groups]]
        key = "main"
        label = {{ fr = "Principal", en = "Main" }}
        fields = [{FIELD}]
    """)
    assert declaration.config_schema.groups[0].fields[0].key == "a"


def test_field_keys_are_unique_across_the_whole_schema() -> None:
    problem = only_problem(f"""
        [[config_schema.steps]]
        key = "one"
        label = "One"
        fields = [{FIELD}]

        [[config_schema.steps]]
        key = "two"
        label = "Two"
        fields = [{{ key = "b", type = "text", label = "B" }}, {FIELD}]
    """)
    assert problem.path == "config_schema.steps[1].fields[1].key"
    assert problem.reason.startswith(
        "field key 'a' is already used at config_schema.steps[0].fields[0]"
    )
    assert "unique across the whole config schema" in problem.reason


def test_step_keys_are_unique() -> None:
    problem = only_problem("""
        [[config_schema.steps]]
        key = "one"
        label = "One"

        [[config_schema.steps]]
        key = "one"
        label = "Again"
    """)
    assert problem.path == "config_schema.steps[1].key"
    assert "step key 'one' is declared twice (first at config_schema.steps[0])" in problem.reason


def test_field_types_come_from_the_allowed_list() -> None:
    problem = only_problem("""
        [config_schema]
        fields = [{ key = "a", type = "string", label = "A" }]
    """)
    assert problem.path == "config_schema.fields[0].type"
    assert problem.reason.startswith("unknown value 'string'; expected one of text, password,")
    assert "multiselect" in problem.reason


@pytest.mark.parametrize("kind", ["select", "multiselect"])
def test_a_select_takes_static_options(kind: str) -> None:
    declaration = declare(f"""
        [config_schema]
        fields = [{{ key = "a", type = "{kind}", label = "A", options = [
          {{ value = "x", label = "X" }},
          {{ value = "y", label = {{ fr = "Y", en = "Why" }} }},
        ] }}]
    """)
    options = declaration.config_schema.fields[0].options
    assert options[1] == SelectOption(value="y", label={"fr": "Y", "en": "Why"})


def test_a_select_takes_a_remote_source() -> None:
    declaration = declare("""
        [[config_schema.fields]]
        key = "a"
        type = "select"
        label = "A"
        remote = { resource = "stores", label_field = "name", value_field = "id" }
    """)
    assert declaration.config_schema.fields[0].remote == RemoteOptions(
        resource="stores", label_field="name", value_field="id"
    )


def test_a_select_needs_options_or_remote() -> None:
    problem = only_problem("""
        [config_schema]
        fields = [{ key = "a", type = "select", label = "A" }]
    """)
    assert problem.path == "config_schema.fields[0].options"
    assert problem.reason.startswith("a select needs its choices")


def test_a_select_takes_options_or_remote_not_both() -> None:
    problem = only_problem("""
        [[config_schema.fields]]
        key = "a"
        type = "select"
        label = "A"
        options = [{ value = "x", label = "X" }]
        remote = { resource = "stores", label_field = "name", value_field = "id" }
    """)
    assert problem.path == "config_schema.fields[0].remote"
    assert "not both" in problem.reason


def test_only_selects_take_options_or_remote() -> None:
    found = reasons("""
        [[config_schema.fields]]
        key = "a"
        type = "text"
        label = "A"
        options = [{ value = "x", label = "X" }]

        [[config_schema.fields]]
        key = "b"
        type = "checkbox"
        label = "B"
        remote = { resource = "stores", label_field = "name", value_field = "id" }
    """)
    assert found == {
        "config_schema.fields[0].options": "only select and multiselect fields take `options`; "
        "this field's type is 'text'",
        "config_schema.fields[1].remote": "only select and multiselect fields take `remote`; "
        "this field's type is 'checkbox'",
    }


def test_remote_has_resource_label_field_and_value_field() -> None:
    found = reasons("""
        [[config_schema.fields]]
        key = "a"
        type = "select"
        label = "A"
        remote = { resource = "all stores", value_field = "id", descripton_field = "x" }
    """)
    assert set(found) == {
        "config_schema.fields[0].remote.descripton_field",
        "config_schema.fields[0].remote.resource",
        "config_schema.fields[0].remote.label_field",
    }
    assert (
        "did you mean 'description_field'?"
        in found["config_schema.fields[0].remote.descripton_field"]
    )
    assert "it is placed in a URL path" in found["config_schema.fields[0].remote.resource"]
    assert "missing required key" in found["config_schema.fields[0].remote.label_field"]


def test_owner_is_merchant_or_integrator() -> None:
    problem = only_problem("""
        [config_schema]
        fields = [{ key = "a", type = "text", label = "A", owner = "admin" }]
    """)
    assert problem.path == "config_schema.fields[0].owner"
    assert problem.reason == "unknown value 'admin'; expected one of merchant, integrator"


def test_a_step_completes_only_with_test_connection() -> None:
    problem = only_problem("""
        [[config_schema.steps]]
        key = "one"
        label = "One"
        on_complete = { action = "save" }
    """)
    assert problem.path == "config_schema.steps[0].on_complete.action"
    assert problem.reason == "unknown value 'save'; expected one of test_connection"


@pytest.mark.parametrize(
    ("label", "path", "reason"),
    [
        ("3", "label", "expected a string or a table, got an integer (3)"),
        ("{ fr = 3 }", "label.fr", "expected a string, got an integer (3)"),
        ("{}", "label", "must not be empty"),
    ],
)
def test_labels_are_a_string_or_a_table_of_strings(label: str, path: str, reason: str) -> None:
    problem = only_problem(f"""
        [config_schema]
        fields = [{{ key = "a", type = "text", label = {label} }}]
    """)
    assert problem.path == f"config_schema.fields[0].{path}"
    assert problem.reason == reason


def test_sensitive_fields_are_known_to_the_model() -> None:
    declaration = declare("""
        [config_schema]
        fields = [
          { key = "api_key", type = "password", label = "Key", sensitive = true },
          { key = "account", type = "text", label = "Account", owner = "integrator" },
        ]
    """)
    assert declaration.config_schema.sensitive_keys() == {"api_key"}
    assert declaration.config_schema.fields[1].owner == "integrator"
