"""Custom data definitions before any network call: validation, dependency order, wire formats.

A definition whose `unique_keys` or relationship `sourceField`s name no declared field is
refused here with a precise message (the API's own refusal would be opaque). Definitions
are put in dependency order so the sibling a relationship targets exists, and has an id,
first; a dependency cycle is an error for the definitions on it, and nothing else stops.

Wire formats: a field is `{name, label (default name), type, required (default false),
description?, default?, options?}` (absent optional keys are omitted, not sent as null); a
relationship is `{sourceField, targetSchemaType, targetSchema, targetField?}` where
`targetSchema` is the schema name for a `system` target and, for a `custom` target, the
target definition's id as a string (the API types it as a string): a sibling's name is
resolved to its id, a numeric target is taken as an id, and any other name is sent as
declared with a warning.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sidecar.declaration.model import (
    CustomDataSpec,
    CustomFieldSpec,
    RelationshipSpec,
    custom_data_key,
)

__all__ = [
    "DefinitionPlan",
    "custom_targets",
    "field_wire",
    "norm_name",
    "prepare_definitions",
    "relationship_wire",
]


def norm_name(value: object) -> str:
    """A name as ShopiMind compares it (`custom_data_key`); "" for what is not a string."""
    return custom_data_key(value) if isinstance(value, str) else ""


def field_wire(spec: CustomFieldSpec) -> dict[str, object]:
    """A field as the API takes it."""
    wire: dict[str, object] = {
        "name": spec.name,
        "label": spec.label or spec.name,
        "type": spec.type,
        "required": spec.required,
    }
    if spec.description is not None:
        wire["description"] = spec.description
    if spec.default is not None:
        wire["default"] = spec.default
    if spec.options is not None:
        wire["options"] = list(spec.options)
    return wire


def relationship_wire(spec: RelationshipSpec, target: str) -> dict[str, object]:
    """A relationship as the API takes it, with `targetSchema` already resolved."""
    wire: dict[str, object] = {
        "sourceField": spec.source_field,
        "targetSchemaType": spec.target_schema_type,
        "targetSchema": target,
    }
    if spec.target_field is not None:
        wire["targetField"] = spec.target_field
    return wire


def custom_targets(spec: CustomDataSpec) -> list[str]:
    """The normalised names of the custom definitions `spec` relates to."""
    return [
        norm_name(rel.target_schema)
        for rel in spec.relationships
        if rel.target_schema_type == "custom"
    ]


def _problems(spec: CustomDataSpec) -> list[str]:
    problems: list[str] = []
    if not spec.name.strip():
        problems.append("the name is empty")
    names = [f.name for f in spec.fields]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"field {name!r} is declared twice")
    for key in spec.unique_keys:
        if key not in names:
            problems.append(f"unique key {key!r} is not a declared field")
    for rel in spec.relationships:
        if rel.source_field not in names:
            problems.append(
                f"relationship source field {rel.source_field!r} is not a declared field"
            )
    return problems


@dataclass(frozen=True, slots=True, kw_only=True)
class DefinitionPlan:
    """Definitions ready to converge, in dependency order, and what was refused up front."""

    ordered: tuple[CustomDataSpec, ...]
    siblings: frozenset[str]
    """Every definition name of the plan (trimmed, case-folded), refused ones included."""
    errors: tuple[str, ...]


def _cycle_from(start: int, deps: Mapping[int, Sequence[int]], pool: set[int]) -> list[int]:
    """A dependency path start -> ... -> start within `pool`, or [] when start is on none."""
    stack: list[tuple[int, list[int]]] = [(start, [start])]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        for nxt in deps[node]:
            if nxt == start:
                return [*path, start]
            if nxt in pool and nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return []


def _dependency_order(
    specs: Sequence[CustomDataSpec],
) -> tuple[list[CustomDataSpec], list[str]]:
    index = {norm_name(spec.name): i for i, spec in enumerate(specs)}
    deps = {
        i: sorted({index[t] for t in custom_targets(spec) if t in index and index[t] != i})
        for i, spec in enumerate(specs)
    }
    waiting = {i: len(d) for i, d in deps.items()}
    dependents: dict[int, list[int]] = {i: [] for i in deps}
    for i, targets in deps.items():
        for target in targets:
            dependents[target].append(i)
    ready = [i for i, count in waiting.items() if count == 0]
    heapq.heapify(ready)  # ties keep declaration order
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in dependents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    stuck = set(deps) - set(order)
    errors: list[str] = []
    for i in sorted(stuck):
        cycle = _cycle_from(i, deps, stuck)
        if cycle:
            path = " -> ".join(repr(specs[j].name) for j in cycle)
            errors.append(f"custom data '{specs[i].name}': dependency cycle ({path})")
    cyclic = {i for i in stuck if _cycle_from(i, deps, stuck)}
    # Those that only depend on a cycle go last; they fail at run time, naming the target.
    order.extend(sorted(stuck - cyclic))
    return [specs[i] for i in order], errors


def prepare_definitions(specs: Sequence[CustomDataSpec]) -> DefinitionPlan:
    """Validate and order the plan's definitions; no network call."""
    errors: list[str] = []
    valid: list[CustomDataSpec] = []
    seen: set[str] = set()
    for spec in specs:
        problems = _problems(spec)
        if norm_name(spec.name) in seen:
            problems.append("declared twice in the plan (names compare trimmed, case-insensitive)")
        seen.add(norm_name(spec.name))
        if problems:
            errors.append(f"custom data '{spec.name}': {'; '.join(problems)}")
        else:
            valid.append(spec)
    ordered, cycle_errors = _dependency_order(valid)
    return DefinitionPlan(
        ordered=tuple(ordered),
        siblings=frozenset(seen),
        errors=(*errors, *cycle_errors),
    )
