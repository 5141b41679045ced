"""`[config_schema]`: the merchant's configuration form (PROTOCOL §2), and its rules.

Keys are ShopiMind's own, so the form passes to the manifest unchanged. Field keys are
unique across the whole form whatever its layout: the values are stored in one map.
"""

from __future__ import annotations

from typing import Final, get_args

from sidecar.declaration._common import (
    LOCALIZED,
    NONBLANK,
    SELECT_OPTIONS,
    URL_SEGMENT,
)
from sidecar.declaration._compound import ArrayOf
from sidecar.declaration._context import Context, Loc, format_path, shown
from sidecar.declaration._nodes import Boolean, Choice, Json
from sidecar.declaration._record import Key, Record, Rule
from sidecar.declaration.model import (
    ConfigField,
    ConfigGroup,
    ConfigSchema,
    ConfigStep,
    FieldOwner,
    FieldType,
    RemoteOptions,
    StepCompletion,
)

__all__ = ["CONFIG_SCHEMA", "FIELD_TYPES", "SELECT_TYPES"]

FIELD_TYPES: Final[tuple[str, ...]] = get_args(FieldType)
SELECT_TYPES: Final = ("select", "multiselect")


def _check_choices(field: ConfigField, at: Loc, ctx: Context) -> None:
    """Selects take static `options` xor a `remote` source; other fields take neither."""
    if field.type in SELECT_TYPES:
        if field.options and field.remote is not None:
            ctx.problem(
                (*at, "remote"),
                "a select takes static `options` or a `remote` source, not both; remove one",
            )
        elif not field.options and field.remote is None:
            ctx.problem(
                (*at, "options"),
                f"a {field.type} needs its choices: static `options = [{{ value = …, label = … }}]`"
                " or `remote = { resource = …, label_field = …, value_field = … }`",
            )
        return
    for key, used in (("options", bool(field.options)), ("remote", field.remote is not None)):
        if used:
            ctx.problem(
                (*at, key),
                f"only select and multiselect fields take `{key}`; this field's type is "
                f"{shown(field.type)}",
            )


REMOTE: Final = Record[RemoteOptions](
    name="RemoteOptions",
    description="Choices fetched when the merchant configures "
    "(your app answers POST /remote-data/<resource>).",
    build=RemoteOptions,
    keys=(
        Key(
            name="resource",
            node=URL_SEGMENT,
            required=True,
            description="The resource name your app is asked for, e.g. 'stores'.",
        ),
        Key(
            name="label_field",
            node=NONBLANK,
            required=True,
            description="The item key shown as label.",
        ),
        Key(
            name="value_field",
            node=NONBLANK,
            required=True,
            description="The item key stored as value.",
        ),
        Key(
            name="description_field",
            node=NONBLANK,
            description="The item key shown as description.",
        ),
    ),
)

CONFIG_FIELD: Final = Record[ConfigField](
    name="ConfigField",
    description="One field of the merchant's configuration form.",
    build=ConfigField,
    rules=(Rule(check=_check_choices, uses=("type", "options", "remote")),),
    keys=(
        Key(
            name="key",
            node=NONBLANK,
            required=True,
            description="Where the value is stored; unique across the whole form.",
        ),
        Key(
            name="type",
            node=Choice(values=FIELD_TYPES),
            required=True,
            description="The input: " + ", ".join(FIELD_TYPES) + ".",
        ),
        Key(name="label", node=LOCALIZED, required=True, description="What the merchant sees."),
        Key(name="help", node=LOCALIZED, description="A hint under the input."),
        Key(name="required", node=Boolean(), description="The merchant must fill it in."),
        Key(name="default", node=Json(), description="The initial value."),
        Key(
            name="owner",
            node=Choice(values=get_args(FieldOwner)),
            description="'merchant' (the form) or 'integrator' (set through the API by you).",
        ),
        Key(
            name="sensitive",
            node=Boolean(),
            description="A secret: stored encrypted on its own and masked in every log.",
        ),
        Key(
            name="supports_variables",
            node=Boolean(),
            description="The value may hold ShopiMind variables.",
        ),
        Key(
            name="options",
            node=SELECT_OPTIONS,
            description="Static choices of a select or multiselect (exclusive with `remote`).",
        ),
        Key(
            name="remote",
            node=REMOTE,
            description="Choices of a select or multiselect fetched from your app "
            "(exclusive with `options`).",
        ),
    ),
)

_FIELDS: Final = ArrayOf(item=CONFIG_FIELD)

STEP_COMPLETION: Final = Record[StepCompletion](
    name="StepCompletion",
    description="What ShopiMind does when the step is completed.",
    build=StepCompletion,
    keys=(
        Key(
            name="action",
            node=Choice(values=("test_connection",)),
            required=True,
            description="'test_connection': check the settings with your app "
            "(POST /test-connection) before going on.",
        ),
    ),
)

_KEY = Key(name="key", node=NONBLANK, required=True, description="Unique among its siblings.")
_LABEL = Key(name="label", node=LOCALIZED, required=True, description="Its title.")
_DESCRIPTION = Key(name="description", node=LOCALIZED, description="A short explanation.")
_FIELDS_KEY = Key(name="fields", node=_FIELDS, description="Its fields, in order.")

CONFIG_STEP: Final = Record[ConfigStep](
    name="ConfigStep",
    description="One page of a wizard.",
    build=ConfigStep,
    keys=(
        _KEY,
        _LABEL,
        _DESCRIPTION,
        _FIELDS_KEY,
        Key(name="on_complete", node=STEP_COMPLETION, description="An action on completion."),
    ),
)

CONFIG_GROUP: Final = Record[ConfigGroup](
    name="ConfigGroup",
    description="A titled group of fields.",
    build=ConfigGroup,
    keys=(_KEY, _LABEL, _DESCRIPTION, _FIELDS_KEY),
)


def _layout(schema: ConfigSchema) -> list[tuple[Loc, ConfigField]]:
    """Every field with its place in the file."""
    placed: list[tuple[Loc, ConfigField]] = []
    placed += [(("fields", j), f) for j, f in enumerate(schema.fields)]
    for i, step in enumerate(schema.steps):
        placed += [(("steps", i, "fields", j), f) for j, f in enumerate(step.fields)]
    for i, group in enumerate(schema.groups):
        placed += [(("groups", i, "fields", j), f) for j, f in enumerate(group.fields)]
    return placed


def _check_unique_field_keys(schema: ConfigSchema, at: Loc, ctx: Context) -> None:
    first: dict[str, Loc] = {}
    for where, field in _layout(schema):
        seen = first.setdefault(field.key, where)
        if seen != where:
            ctx.problem(
                (*at, *where, "key"),
                f"field key {shown(field.key)} is already used at {format_path((*at, *seen))}; "
                "field keys must be unique across the whole config schema",
            )


CONFIG_SCHEMA: Final = Record[ConfigSchema](
    name="ConfigSchema",
    description="The configuration form: `steps` (a wizard), `fields` (flat) or `groups`, "
    "one kind only.",
    build=ConfigSchema,
    one_kind_of=("steps", "fields", "groups"),
    rules=(Rule(check=_check_unique_field_keys, uses=("steps", "fields", "groups")),),
    keys=(
        Key(
            name="steps",
            node=ArrayOf(
                item=CONFIG_STEP,
                unique_by=lambda step: step.key,
                unique_key="key",
                unique_what="step key",
            ),
            description="A wizard: one page per step.",
        ),
        Key(name="fields", node=_FIELDS, description="A flat form."),
        Key(
            name="groups",
            node=ArrayOf(
                item=CONFIG_GROUP,
                unique_by=lambda group: group.key,
                unique_key="key",
                unique_what="group key",
            ),
            description="A form in titled groups.",
        ),
    ),
)
