"""`Record`: a table of the file read into a frozen model object.

Unknown, missing and mistyped keys are errors (a misspelled key is never silently
ignored, the flaw of hypercorn's `from_mapping`), and a table's `rules` look at several
of its keys at once. A rule runs only on what could be read, so it never reports the
consequence of a mistake already reported.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sidecar.declaration._context import (
    INVALID,
    Context,
    Invalid,
    Loc,
    did_you_mean,
    listing,
    shown,
)
from sidecar.declaration._nodes import Check, Node, Schema, SchemaDefs

__all__ = ["Key", "Record", "Rule"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Key:
    """One key of a table: its node, what it means, and the model attribute it fills."""

    name: str
    node: Node[Any]
    description: str
    required: bool = False
    attr: str | None = None
    """The model's attribute when it differs from the key (`in` → `values`)."""


@dataclass(frozen=True, kw_only=True)
class Rule(Generic[T]):
    """A check over a table, and the keys it reads.

    It runs whenever those keys could be read, even when another key of the table is
    wrong: a file's unrelated mistakes are all reported in one run, and a rule never
    reports the consequence of a mistake already reported.
    """

    check: Check[T]
    uses: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Record(Node[T]):
    """A table read into a model object (`build(**attributes)`)."""

    name: str
    """The model class name; the table's `$defs` entry."""
    description: str
    keys: tuple[Key, ...]
    build: Callable[..., T]
    one_kind_of: tuple[str, ...] = ()
    """At most one of these keys may be set."""
    rules: tuple[Rule[T], ...] = ()

    def __post_init__(self) -> None:
        known = {key.name for key in self.keys}
        for names in (self.one_kind_of, *(rule.uses for rule in self.rules)):
            if not known.issuperset(names):
                raise ValueError(f"{self.name}: no key {sorted(set(names) - known)}")

    def expected(self, table: str) -> str:
        return table

    def accepts(self, raw: object) -> bool:
        return isinstance(raw, dict)

    def parse(
        self, raw: object, at: Loc, ctx: Context, *, extra: Mapping[str, object] | None = None
    ) -> T | Invalid:
        """The model object; `extra` adds attributes that are not keys (a table's name)."""
        if not self._typed(raw, at, ctx) or not isinstance(raw, dict):
            return INVALID
        known = [key.name for key in self.keys]
        for name in raw:
            if name not in known:
                hint = did_you_mean(name, known) or f"; expected one of {listing(known)}"
                ctx.problem((*at, name), f"unknown key {shown(name)}{hint}")
        buildable = self._check_one_kind(raw, at, ctx)
        attributes: dict[str, object] = dict(extra or {})
        unreadable: set[str] = set()
        for key in self.keys:
            where = (*at, key.name)
            if key.name not in raw:
                if key.required:
                    meaning = key.description[:1].lower() + key.description[1:].rstrip(".")
                    ctx.problem(where, f"missing required key ({meaning})")
                    buildable = False
                continue
            value = key.node.parse(raw[key.name], where, ctx)
            ctx.remember(where, value)
            if isinstance(value, Invalid):
                unreadable.add(key.name)
                buildable = buildable and not key.required
            else:
                attributes[key.attr or key.name] = value
        if not buildable:
            return INVALID
        # Unreadable optional keys take their defaults here, only for the rules that do
        # not read them; the table itself is still invalid.
        built = self.build(**attributes)
        for rule in self.rules:
            if unreadable.isdisjoint(rule.uses):
                rule.check(built, at, ctx)
        return INVALID if unreadable else built

    def _check_one_kind(self, raw: dict[Any, Any], at: Loc, ctx: Context) -> bool:
        present = [name for name in self.one_kind_of if name in raw]
        for name in present[1:]:
            ctx.problem(
                (*at, name),
                f"cannot be used together with {present[0]!r}: "
                f"use only one of {listing(self.one_kind_of)}",
            )
        return len(present) <= 1

    def schema(self, defs: SchemaDefs) -> Schema:
        return defs.ref(self.name, self.body)

    def body(self, defs: SchemaDefs) -> Schema:
        """The table's own schema (what `$defs/<name>` holds)."""
        defaults = _defaults(self.build)
        properties: Schema = {}
        for key in self.keys:
            described = {**key.node.schema(defs), "description": key.description}
            default = defaults.get(key.attr or key.name)
            if isinstance(default, str | int | float | bool):
                described["default"] = default
            properties[key.name] = described
        out: Schema = {
            "type": "object",
            "description": self.description,
            "properties": properties,
            "additionalProperties": False,
        }
        required = [key.name for key in self.keys if key.required]
        if required:
            out["required"] = required
        if self.one_kind_of:
            pairs = itertools.combinations(self.one_kind_of, 2)
            out["not"] = {"anyOf": [{"required": list(pair)} for pair in pairs]}
        return out


def _defaults(build: Callable[..., object]) -> dict[str, object]:
    if not (isinstance(build, type) and dataclasses.is_dataclass(build)):
        return {}
    return {
        f.name: f.default for f in dataclasses.fields(build) if f.default is not dataclasses.MISSING
    }
