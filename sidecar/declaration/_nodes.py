"""The nodes of a file's spec: how to read one value, and how to describe it in JSON Schema.

A spec is built from these nodes (with `_record` and `_compound`), and gives both the parser
and the JSON Schema, so an editor and `shopimind-sidecar check` can never disagree on a
key's name or type. Each node reads a raw value (from `tomllib` or `json`) into a typed
value, reporting problems into a `Context` instead of raising.
"""

from __future__ import annotations

import datetime
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from sidecar.declaration._context import (
    INVALID,
    Context,
    Invalid,
    Loc,
    did_you_mean,
    listing,
    shown,
)
from sidecar.declaration.model import JSONValue

__all__ = [
    "Boolean",
    "Check",
    "Choice",
    "Integer",
    "Json",
    "JsonObject",
    "Node",
    "Number",
    "Schema",
    "SchemaDefs",
    "Text",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
Schema: TypeAlias = dict[str, Any]


class SchemaDefs:
    """The `$defs` of a schema being generated: each named node is described once."""

    def __init__(self) -> None:
        self.defs: dict[str, Schema] = {}

    def ref(self, name: str, describe: Callable[[SchemaDefs], Schema]) -> Schema:
        """A `$ref` to `name`, describing it on first use."""
        if name not in self.defs:
            self.defs[name] = {}  # reserve the name first: a definition may refer to itself
            self.defs[name] = describe(self)
        return {"$ref": f"#/$defs/{name}"}


class Node(ABC, Generic[T_co]):
    """One value of the file: how to read it, and how to describe it in JSON Schema."""

    @abstractmethod
    def expected(self, table: str) -> str:
        """What a message says was expected, e.g. `a string`; `table` is `a table` or
        `an object`, depending on the file's language."""

    @abstractmethod
    def accepts(self, raw: object) -> bool:
        """Whether `raw` has this node's type (its content may still be wrong)."""

    @abstractmethod
    def parse(self, raw: object, at: Loc, ctx: Context) -> T_co | Invalid:
        """The typed value, or `INVALID` after reporting every problem into `ctx`."""

    @abstractmethod
    def schema(self, defs: SchemaDefs) -> Schema:
        """This node in JSON Schema."""

    def _typed(self, raw: object, at: Loc, ctx: Context) -> bool:
        if self.accepts(raw):
            return True
        ctx.wrong_type(at, self.expected(ctx.table_word), raw)
        return False


@dataclass(frozen=True, kw_only=True)
class Text(Node[str]):
    """A string; `pattern` must match all of it, `hint` says in words what it allows."""

    pattern: str | None = None
    hint: str = ""
    nonblank: bool = False

    def expected(self, table: str) -> str:
        return "a string"

    def accepts(self, raw: object) -> bool:
        return isinstance(raw, str)

    def parse(self, raw: object, at: Loc, ctx: Context) -> str | Invalid:
        if not self._typed(raw, at, ctx) or not isinstance(raw, str):
            return INVALID
        if (self.nonblank or self.pattern is not None) and not raw.strip():
            ctx.problem(at, "must not be empty")
            return INVALID
        if self.pattern is not None and re.fullmatch(self.pattern, raw) is None:
            ctx.problem(at, f"{shown(raw)} is not allowed here: use {self.hint}")
            return INVALID
        return raw

    def schema(self, defs: SchemaDefs) -> Schema:
        if self.pattern is not None:
            return {"type": "string", "pattern": f"^(?:{self.pattern})$"}
        if self.nonblank:
            return {"type": "string", "pattern": r"\S"}
        return {"type": "string"}


@dataclass(frozen=True, kw_only=True)
class Choice(Node[str]):
    """One string out of a fixed list."""

    values: tuple[str, ...]

    def expected(self, table: str) -> str:
        return f"one of {listing(self.values)}"

    def accepts(self, raw: object) -> bool:
        return isinstance(raw, str)

    def parse(self, raw: object, at: Loc, ctx: Context) -> str | Invalid:
        if not self._typed(raw, at, ctx) or not isinstance(raw, str):
            return INVALID
        if raw not in self.values:
            hint = did_you_mean(raw, self.values)
            ctx.problem(
                at, f"unknown value {shown(raw)}; expected one of {listing(self.values)}{hint}"
            )
            return INVALID
        return raw

    def schema(self, defs: SchemaDefs) -> Schema:
        return {"type": "string", "enum": list(self.values)}


def _range_problem(value: float, low: float | None, high: float | None) -> str | None:
    if low is not None and high is not None and not low <= value <= high:
        return f"must be from {low:g} to {high:g}; got {value:g}"
    if low is not None and value < low:
        return f"must be at least {low:g}; got {value:g}"
    if high is not None and value > high:
        return f"must be at most {high:g}; got {value:g}"
    return None


def _range_schema(low: float | None, high: float | None) -> Schema:
    bounds: Schema = {}
    if low is not None:
        bounds["minimum"] = low
    if high is not None:
        bounds["maximum"] = high
    return bounds


@dataclass(frozen=True, kw_only=True)
class Integer(Node[int]):
    """A whole number (never a boolean, never a float) within bounds."""

    minimum: int | None = None
    maximum: int | None = None

    def expected(self, table: str) -> str:
        return "an integer"

    def accepts(self, raw: object) -> bool:
        return isinstance(raw, int) and not isinstance(raw, bool)

    def parse(self, raw: object, at: Loc, ctx: Context) -> int | Invalid:
        if not self._typed(raw, at, ctx) or not isinstance(raw, int):
            return INVALID
        problem = _range_problem(raw, self.minimum, self.maximum)
        if problem is not None:
            ctx.problem(at, problem)
            return INVALID
        return raw

    def schema(self, defs: SchemaDefs) -> Schema:
        return {"type": "integer", **_range_schema(self.minimum, self.maximum)}


@dataclass(frozen=True, kw_only=True)
class Number(Node[float]):
    """A finite number, integer or float, within bounds."""

    minimum: float | None = None
    maximum: float | None = None

    def expected(self, table: str) -> str:
        return "a number"

    def accepts(self, raw: object) -> bool:
        return isinstance(raw, int | float) and not isinstance(raw, bool)

    def parse(self, raw: object, at: Loc, ctx: Context) -> float | Invalid:
        if not self._typed(raw, at, ctx) or not isinstance(raw, int | float):
            return INVALID
        value = float(raw)
        problem = "must be a finite number" if not math.isfinite(value) else None
        problem = problem or _range_problem(value, self.minimum, self.maximum)
        if problem is not None:
            ctx.problem(at, problem)
            return INVALID
        return value

    def schema(self, defs: SchemaDefs) -> Schema:
        return {"type": "number", **_range_schema(self.minimum, self.maximum)}


@dataclass(frozen=True)
class Boolean(Node[bool]):
    """`true` or `false`."""

    def expected(self, table: str) -> str:
        return "true or false"

    def accepts(self, raw: object) -> bool:
        return isinstance(raw, bool)

    def parse(self, raw: object, at: Loc, ctx: Context) -> bool | Invalid:
        return raw if self._typed(raw, at, ctx) and isinstance(raw, bool) else INVALID

    def schema(self, defs: SchemaDefs) -> Schema:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Json(Node[JSONValue]):
    """Any value that has a JSON form; passed through as given (defaults, previews…)."""

    def expected(self, table: str) -> str:
        return "a JSON value"

    def accepts(self, raw: object) -> bool:
        return not isinstance(raw, datetime.date | datetime.time)

    def parse(self, raw: object, at: Loc, ctx: Context) -> JSONValue | Invalid:
        if raw is None or isinstance(raw, str | bool | int):
            return raw
        if isinstance(raw, float):
            if math.isfinite(raw):
                return raw
            ctx.problem(at, f"{raw} has no JSON form; use a finite number")
            return INVALID
        if isinstance(raw, list):
            items = [self.parse(item, (*at, i), ctx) for i, item in enumerate(raw)]
            valid = [item for item in items if not isinstance(item, Invalid)]
            return valid if len(valid) == len(items) else INVALID
        if isinstance(raw, dict):
            pairs = {str(k): self.parse(v, (*at, str(k)), ctx) for k, v in raw.items()}
            table = {k: v for k, v in pairs.items() if not isinstance(v, Invalid)}
            return table if len(table) == len(pairs) else INVALID
        if isinstance(raw, datetime.date | datetime.time):
            ctx.problem(at, "TOML dates and times have no JSON form; quote it as a string")
        else:
            ctx.wrong_type(at, self.expected(ctx.table_word), raw)
        return INVALID

    def schema(self, defs: SchemaDefs) -> Schema:
        return {}


@dataclass(frozen=True)
class JsonObject(Node[Mapping[str, JSONValue]]):
    """A table of JSON values, passed through as given."""

    def expected(self, table: str) -> str:
        return table

    def accepts(self, raw: object) -> bool:
        return isinstance(raw, dict)

    def parse(self, raw: object, at: Loc, ctx: Context) -> Mapping[str, JSONValue] | Invalid:
        if not self._typed(raw, at, ctx):
            return INVALID
        value = Json().parse(raw, at, ctx)
        return value if isinstance(value, dict) else INVALID

    def schema(self, defs: SchemaDefs) -> Schema:
        return {"type": "object"}


Check: TypeAlias = Callable[[T, Loc, Context], None]
"""A rule over a whole parsed value: reports into the context at paths below `Loc`."""
