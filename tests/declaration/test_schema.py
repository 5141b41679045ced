"""The JSON Schema editors use: complete, closed, described, and in step with the parser."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from sidecar.declaration import declaration_json_schema, model
from tests.declaration.helpers import EXAMPLE, HEAD

SCHEMA = declaration_json_schema()
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(document: object) -> list[str]:
    """What the reference validator (the `jsonschema` library) says of `document`."""
    return [
        f"{error.json_path}: {error.validator}: {error.message}"
        for error in VALIDATOR.iter_errors(document)
    ]


KEY_FOR_ATTRIBUTE = {("WidgetVisibility", "values"): "in"}
NOT_A_KEY = {
    ("Declaration", "source"),  # where the file was read from
    ("InboundAction", "name"),  # the table's name: [inbound.<name>]
    ("Provisioning", "plan"),  # its keys sit in [provisioning] itself
}


def model_classes() -> list[type]:
    return [
        value
        for value in vars(model).values()
        if isinstance(value, type)
        and dataclasses.is_dataclass(value)
        and value.__module__ == model.__name__
    ]


PLAN_KEYS = {f.name for f in dataclasses.fields(model.ProvisioningPlan)}


def properties(name: str) -> set[str]:
    """The keys of the table a model class is read from."""
    if name == "Declaration":
        return set(SCHEMA["properties"])
    if name == "ProvisioningPlan":  # its keys are read inside [provisioning]
        return set(SCHEMA["$defs"]["Provisioning"]["properties"]) & PLAN_KEYS
    if name == "Provisioning":
        return set(SCHEMA["$defs"]["Provisioning"]["properties"]) - PLAN_KEYS
    return set(SCHEMA["$defs"][name]["properties"])


def tables() -> Iterator[dict[str, Any]]:
    """The root and every table of `$defs` (each table is described once, there)."""
    yield SCHEMA
    for definition in SCHEMA["$defs"].values():
        if definition.get("type") == "object" and "properties" in definition:
            yield definition


def test_it_is_draft_2020_12_and_plain_json() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(json.dumps(SCHEMA)) == SCHEMA
    Draft202012Validator.check_schema(SCHEMA)  # valid against the 2020-12 meta-schema


@pytest.mark.parametrize("cls", model_classes(), ids=lambda cls: cls.__name__)
def test_it_has_a_key_for_every_field_of_the_model(cls: type) -> None:
    expected = {
        KEY_FOR_ATTRIBUTE.get((cls.__name__, f.name), f.name)
        for f in dataclasses.fields(cls)
        if (cls.__name__, f.name) not in NOT_A_KEY
    }
    assert properties(cls.__name__) == expected


def test_every_table_is_closed_and_every_key_described() -> None:
    found = list(tables())
    assert len(found) == len(model_classes()) - 1  # ProvisioningPlan is read in Provisioning
    for table in found:
        assert table["additionalProperties"] is False
        for name, key in table["properties"].items():
            assert key.get("description"), name


def test_defaults_come_from_the_model() -> None:
    sync = SCHEMA["$defs"]["SyncStep"]["properties"]
    assert sync["page_limit"]["default"] == 500
    assert sync["cursor_scope"]["default"] == "global"
    assert sync["page_limit"]["maximum"] == 10_000


def test_the_example_is_valid_against_it() -> None:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert errors(example) == []


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[[sync]]\nentity = "c"\ntarget = "customers"\nbatchsize = 5\n', "'batchsize'"),
        ('[[sync]]\nentity = "c"\ntarget = "customers"\ncursor_scope = "all"\n', "enum"),
        ('[[sync]]\nentity = "c"\ntarget = "customers"\npage_limit = 0\n', "minimum"),
        ("[config_schema]\nfields = []\nsteps = []\n", "config_schema"),
        ('[inbound.Sale]\ntarget = "contacts"\n', "'Sale' does not match"),
        ("[[widgets]]\nname = 'W'\n", "required"),
    ],
)
def test_it_refuses_what_the_loader_refuses(text: str, complaint: str) -> None:
    found = errors(tomllib.loads(HEAD + text))
    assert any(complaint in error for error in found), found
