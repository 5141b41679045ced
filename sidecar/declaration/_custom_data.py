"""`[[provisioning.custom_data]]`: custom data definitions (PROTOCOL §4), and their rules.

Checked before any network call: field names unique, `unique_keys` and relationship
source fields naming declared fields, and no relationship cycle between sibling
definitions — they are created in dependency order, so a cycle could never be created.
A dynamic plan's definitions are checked together with the static ones (`Context.base`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, get_args

from sidecar.declaration._common import NONBLANK
from sidecar.declaration._compound import ArrayOf
from sidecar.declaration._context import Context, Loc, listing, shown
from sidecar.declaration._nodes import Boolean, Choice, Json, Text
from sidecar.declaration._record import Key, Record, Rule
from sidecar.declaration.model import (
    CustomDataSpec,
    CustomFieldSpec,
    CustomFieldType,
    RelationshipSpec,
    custom_data_key,
)

__all__ = ["CUSTOM_DATA", "CUSTOM_DATA_LIST", "CUSTOM_FIELD_TYPES"]

CUSTOM_FIELD_TYPES: Final[tuple[str, ...]] = get_args(CustomFieldType)
_NEW, _ON_PATH, _DONE = 0, 1, 2


CUSTOM_FIELD: Final = Record[CustomFieldSpec](
    name="CustomFieldSpec",
    description="A field of a custom data definition.",
    build=CustomFieldSpec,
    keys=(
        Key(name="name", node=NONBLANK, required=True, description="Unique in its definition."),
        Key(
            name="type",
            node=Choice(values=CUSTOM_FIELD_TYPES),
            required=True,
            description="One of " + ", ".join(CUSTOM_FIELD_TYPES) + ".",
        ),
        Key(name="label", node=NONBLANK, description="Defaults to the name."),
        Key(name="required", node=Boolean(), description="Every record must have it."),
        Key(name="description", node=Text(), description="A short explanation."),
        Key(name="default", node=Json(), description="The value when a record has none."),
        Key(name="options", node=ArrayOf(item=Json()), description="Allowed values."),
    ),
)

RELATIONSHIP: Final = Record[RelationshipSpec](
    name="RelationshipSpec",
    description="A link from a field to a system schema or to another definition.",
    build=RelationshipSpec,
    keys=(
        Key(
            name="source_field",
            node=NONBLANK,
            required=True,
            description="A field of this definition.",
        ),
        Key(
            name="target_schema_type",
            node=Choice(values=("system", "custom")),
            required=True,
            description="'system' (e.g. customers) or 'custom' (a custom data definition).",
        ),
        Key(
            name="target_schema",
            node=NONBLANK,
            required=True,
            description="A system schema, or the name of a definition (a sibling is created "
            "first).",
        ),
        Key(name="target_field", node=NONBLANK, description="The field linked to."),
    ),
)


def _check_field_references(definition: CustomDataSpec, at: Loc, ctx: Context) -> None:
    """unique_keys and relationship source fields name declared fields."""
    names = [field.name for field in definition.fields]
    expected = f"a field of this definition ({listing(names) or 'it has none'})"
    for i, key in enumerate(definition.unique_keys):
        if key not in names:
            ctx.problem((*at, "unique_keys", i), f"{shown(key)} is not {expected}")
    for i, relationship in enumerate(definition.relationships):
        if relationship.source_field not in names:
            ctx.problem(
                (*at, "relationships", i, "source_field"),
                f"{shown(relationship.source_field)} is not {expected}",
            )


def _sibling_edges(definitions: Sequence[CustomDataSpec]) -> list[list[tuple[int, int]]]:
    """For each definition, (relationship index, sibling index) of its custom links."""
    index: dict[str, int] = {}
    for i, d in enumerate(definitions):
        index.setdefault(custom_data_key(d.name), i)  # a repeated name is reported elsewhere
    return [
        [
            (j, index[custom_data_key(r.target_schema)])
            for j, r in enumerate(d.relationships)
            if r.target_schema_type == "custom" and custom_data_key(r.target_schema) in index
        ]
        for d in definitions
    ]


def _find_cycles(edges: list[list[tuple[int, int]]]) -> list[list[int]]:
    """Cycles of the graph (at least one per tangle), each starting from its lowest node.

    An iterative depth-first search: linear in the links, whatever an app's plan holds.
    """
    state = [_NEW] * len(edges)
    cycles: list[list[int]] = []
    for root in range(len(edges)):
        if state[root] != _NEW:
            continue
        state[root] = _ON_PATH
        path = [root]
        pending = [iter(edges[root])]
        while pending:
            for _, nxt in pending[-1]:
                if state[nxt] == _ON_PATH:
                    cycle = path[path.index(nxt) :]
                    lowest = cycle.index(min(cycle))
                    cycles.append(cycle[lowest:] + cycle[:lowest])
                elif state[nxt] == _NEW:
                    state[nxt] = _ON_PATH
                    path.append(nxt)
                    pending.append(iter(edges[nxt]))
                    break
            else:
                state[path.pop()] = _DONE
                pending.pop()
    return cycles


def _check_definitions(definitions: tuple[CustomDataSpec, ...], at: Loc, ctx: Context) -> None:
    """Names not already in the base plan; no relationship cycle between siblings."""
    base = ctx.base.custom_data
    base_names = {custom_data_key(d.name) for d in base}
    for i, definition in enumerate(definitions):
        if custom_data_key(definition.name) in base_names:
            ctx.problem(
                (*at, i, "name"), f"{shown(definition.name)} is already a static definition"
            )
    every = (*base, *definitions)
    edges = _sibling_edges(every)
    for cycle in _find_cycles(edges):
        new = [k for k, i in enumerate(cycle) if i >= len(base)]
        if not new:
            continue  # the static plan was checked on its own
        step = new[0]
        here, there = cycle[step], cycle[(step + 1) % len(cycle)]
        relationship = next(j for j, nxt in edges[here] if nxt == there)
        names = " → ".join(every[i].name for i in [*cycle, cycle[0]])
        ctx.problem(
            (*at, here - len(base), "relationships", relationship, "target_schema"),
            f"relationship cycle between custom data definitions: {names}; definitions are "
            "created in dependency order, so one of these links must go",
        )


CUSTOM_DATA: Final = Record[CustomDataSpec](
    name="CustomDataSpec",
    description="A custom data definition to find (and extend) or create, then activate.",
    build=CustomDataSpec,
    rules=(Rule(check=_check_field_references, uses=("fields", "unique_keys", "relationships")),),
    keys=(
        Key(
            name="name",
            node=NONBLANK,
            required=True,
            description="Unique (trimmed, case-insensitive); sync targets use custom_data:<name>.",
        ),
        Key(name="description", node=Text(), description="A short explanation."),
        Key(
            name="unique_keys",
            node=ArrayOf(item=NONBLANK, unique_by=lambda key: key),
            description="Fields that identify a record.",
        ),
        Key(
            name="fields",
            node=ArrayOf(
                item=CUSTOM_FIELD,
                unique_by=lambda field: field.name,
                unique_key="name",
                unique_what="field name",
            ),
            description="Its fields; missing ones are added to an existing definition.",
        ),
        Key(
            name="relationships",
            node=ArrayOf(
                item=RELATIONSHIP,
                unique_by=lambda relationship: relationship.source_field,
                unique_key="source_field",
                unique_what="relationship source field",
            ),
            description="Links to system schemas or other definitions.",
        ),
    ),
)


CUSTOM_DATA_LIST: Final = ArrayOf(
    item=CUSTOM_DATA,
    unique_by=lambda definition: custom_data_key(definition.name),
    unique_key="name",
    unique_what="definition name (trimmed, case-insensitive)",
    checks=(_check_definitions,),
)
