"""The nodes that hold other nodes: arrays, alternatives, named definitions, free-named tables.

An array checks what must not repeat among the items it could read, and runs its own
rules (a parent declared earlier, no cycle…) only when every item could be read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from sidecar.declaration._context import INVALID, Context, Invalid, Loc, format_path, shown
from sidecar.declaration._nodes import Check, Node, Schema, SchemaDefs
from sidecar.declaration._record import Record

__all__ = ["ArrayOf", "MapOf", "Named", "OneOf"]

T = TypeVar("T")


def _too_few(minimum: int, what: str) -> str:
    return "must not be empty" if minimum == 1 else f"needs at least {minimum} {what}"


@dataclass(frozen=True, kw_only=True)
class ArrayOf(Node[tuple[T, ...]]):
    """An array; `unique_by` names what must not repeat (checked among readable items).

    `checks` run only when every item could be read, so a rule never reports a
    consequence of a mistake already reported.
    """

    item: Node[T]
    min_items: int = 0
    unique_by: Callable[[T], Hashable] | None = None
    unique_key: str | None = None
    """The item's key a duplicate is reported at (None: the item itself)."""
    unique_what: str = "value"
    checks: tuple[Check[tuple[T, ...]], ...] = ()

    def expected(self, table: str) -> str:
        return "an array"

    def accepts(self, raw: object) -> bool:
        return isinstance(raw, list)

    def parse(self, raw: object, at: Loc, ctx: Context) -> tuple[T, ...] | Invalid:
        if not self._typed(raw, at, ctx) or not isinstance(raw, list):
            return INVALID
        if len(raw) < self.min_items:
            ctx.problem(at, _too_few(self.min_items, "items"))
        items = [self.item.parse(item, (*at, i), ctx) for i, item in enumerate(raw)]
        if self.unique_by is not None:
            self._check_unique(items, at, ctx, self.unique_by)
        if len(raw) < self.min_items or any(isinstance(item, Invalid) for item in items):
            return INVALID
        value = tuple(item for item in items if not isinstance(item, Invalid))
        for check in self.checks:
            check(value, at, ctx)
        return value

    def _check_unique(
        self, items: list[T | Invalid], at: Loc, ctx: Context, key: Callable[[T], Hashable]
    ) -> None:
        first: dict[Hashable, int] = {}
        for i, item in enumerate(items):
            if isinstance(item, Invalid):
                continue
            seen = first.setdefault(key(item), i)
            if seen != i:
                where = (*at, i, self.unique_key) if self.unique_key else (*at, i)
                ctx.problem(
                    where,
                    f"{self.unique_what} {shown(key(item))} is declared twice (first at "
                    f"{format_path((*at, seen))}); each {self.unique_what} must be unique",
                )

    def schema(self, defs: SchemaDefs) -> Schema:
        out: Schema = {"type": "array", "items": self.item.schema(defs)}
        if self.min_items:
            out["minItems"] = self.min_items
        if self.unique_by is not None and self.unique_key is None:
            out["uniqueItems"] = True
        return out


@dataclass(frozen=True, kw_only=True)
class OneOf(Node[T]):
    """The first branch whose type matches the value (`true` or `{max_ratio = …}`)."""

    branches: tuple[Node[T], ...]

    def expected(self, table: str) -> str:
        return " or ".join(branch.expected(table) for branch in self.branches)

    def accepts(self, raw: object) -> bool:
        return any(branch.accepts(raw) for branch in self.branches)

    def parse(self, raw: object, at: Loc, ctx: Context) -> T | Invalid:
        for branch in self.branches:
            if branch.accepts(raw):
                return branch.parse(raw, at, ctx)
        ctx.wrong_type(at, self.expected(ctx.table_word), raw)
        return INVALID

    def schema(self, defs: SchemaDefs) -> Schema:
        return {"anyOf": [branch.schema(defs) for branch in self.branches]}


@dataclass(frozen=True, kw_only=True)
class Named(Node[T]):
    """A node described once under `$defs/<name>` and referred to everywhere else."""

    name: str
    description: str
    node: Node[T]

    def expected(self, table: str) -> str:
        return self.node.expected(table)

    def accepts(self, raw: object) -> bool:
        return self.node.accepts(raw)

    def parse(self, raw: object, at: Loc, ctx: Context) -> T | Invalid:
        return self.node.parse(raw, at, ctx)

    def schema(self, defs: SchemaDefs) -> Schema:
        return defs.ref(
            self.name, lambda d: {"description": self.description, **self.node.schema(d)}
        )


@dataclass(frozen=True, kw_only=True)
class MapOf(Node[dict[str, T]]):
    """A table whose keys are names the vendor chooses (`[inbound.<name>]`).

    With `name_attribute`, the value is a `Record` and the key fills that attribute.
    """

    value: Node[T]
    key_pattern: str | None = None
    key_hint: str = ""
    min_items: int = 0
    name_attribute: str | None = None

    def __post_init__(self) -> None:
        if self.name_attribute is not None and not isinstance(self.value, Record):
            raise TypeError("MapOf(name_attribute=…) needs a Record value to fill")

    def expected(self, table: str) -> str:
        return table

    def accepts(self, raw: object) -> bool:
        return isinstance(raw, dict)

    def parse(self, raw: object, at: Loc, ctx: Context) -> dict[str, T] | Invalid:
        if not self._typed(raw, at, ctx) or not isinstance(raw, dict):
            return INVALID
        ok = len(raw) >= self.min_items
        if not ok:
            ctx.problem(at, _too_few(self.min_items, "entries"))
        out: dict[str, T] = {}
        for name, item in raw.items():
            where = (*at, name)
            if self.key_pattern is not None and re.fullmatch(self.key_pattern, name) is None:
                ctx.problem(where, f"the name {shown(name)} is not allowed: use {self.key_hint}")
                ok = False
            value = self._parse_value(name, item, where, ctx)
            ctx.remember(where, value)
            if isinstance(value, Invalid):
                ok = False
            else:
                out[name] = value
        return out if ok else INVALID

    def _parse_value(self, name: str, item: object, at: Loc, ctx: Context) -> T | Invalid:
        if self.name_attribute is not None and isinstance(self.value, Record):
            return self.value.parse(item, at, ctx, extra={self.name_attribute: name})
        return self.value.parse(item, at, ctx)

    def schema(self, defs: SchemaDefs) -> Schema:
        out: Schema = {"type": "object", "additionalProperties": self.value.schema(defs)}
        if self.key_pattern is not None:
            out["propertyNames"] = {"pattern": f"^(?:{self.key_pattern})$"}
        if self.min_items:
            out["minProperties"] = self.min_items
        return out
