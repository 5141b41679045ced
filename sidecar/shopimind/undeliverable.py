"""Why an item can never be delivered to ShopiMind: one check before every push.

Sending such an item again cannot help, so it is set aside — a per-item rejection that
goes to the dead-letter with the reason — instead of failing the request that carries it
(which would be retried forever and hold back everything behind it):

- it **cannot be encoded** as the JSON ShopiMind reads: a non-finite number (`1e400`
  parses as infinity, which JSON cannot write), an integer beyond 64 bits, a string
  holding a lone surrogate (not UTF-8), a value that is not JSON at all;
- it is **not an object** where a resource takes objects;
- it **lacks a field its resource requires**, or holds a value of the **wrong type** for
  a field (custom data records: the definition's fields, PROTOCOL §4). ShopiMind would
  reject such an item; refusing it here says why in our words, and before any request.

Every reason starts with what the item is (`item 'c-12'` when the app gave it an id), so an
operator reading the dead-letter knows which record of the app to fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sidecar.payloads import UnsafeNumber
from sidecar.store.records import RejectedItemInput

__all__ = [
    "ENCODING_PREFIX",
    "NO_RULES",
    "FieldRule",
    "ItemRules",
    "encoding_problem",
    "item_problem",
    "item_ref",
    "set_aside",
    "storable",
]

ENCODING_PREFIX: Final = "cannot be encoded as JSON: "
"""Reasons of items whose value could not be kept as it was (see `storable`)."""
_MAX_INTEGER: Final = 2**63 - 1
_MIN_INTEGER: Final = -(2**63)
_ID_KEYS: Final = ("id", "external_id", "reference", "code")
_MAX_REF_CHARS: Final = 80
_MAX_STORED_DEPTH: Final = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRule:
    """A field a resource knows: its type (a custom data field type) and whether required."""

    name: str
    type: str
    required: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRules:
    """What every item pushed to one resource must satisfy beyond being encodable."""

    fields: tuple[FieldRule, ...] = ()


NO_RULES: Final = ItemRules()


def _path(parts: Sequence[str | int]) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _unsafe_text(value: UnsafeNumber) -> str:
    """The number as Python reads it (`inf`, `nan`), as for a value built in Python."""
    if value.rule == "non_finite_number":
        return repr(float(value.text))
    return value.text


def _scalar_problem(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, UnsafeNumber):  # as the app's page was read (sidecar.payloads)
        if value.rule == "integer_out_of_range":
            return "is an integer beyond 64 bits"
        return f"is not a finite number ({_unsafe_text(value)})"
    if isinstance(value, int):
        if _MIN_INTEGER <= value <= _MAX_INTEGER:
            return None
        return "is an integer beyond 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"is not a finite number ({value!r})"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is a string that is not valid UTF-8 (a lone surrogate)"
        return None
    return f"is not a JSON value ({type(value).__name__})"


def _is_clean(value: object) -> bool:
    """Whether `value` is plain JSON: the fast path, walked once without building paths
    (exact types; anything unusual goes to the slow path, which says what and where)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if type(current) is str:
            if not current.isascii():
                try:
                    current.encode("utf-8")
                except UnicodeEncodeError:
                    return False
        elif type(current) is dict:
            for key, child in current.items():
                if type(key) is not str or not (key.isascii() or _scalar_problem(key) is None):
                    return False
                stack.append(child)
        elif type(current) is list:
            stack.extend(current)
        elif type(current) is int:
            if not _MIN_INTEGER <= current <= _MAX_INTEGER:
                return False
        elif type(current) is float:
            if not math.isfinite(current):
                return False
        elif current is not None and type(current) is not bool:
            return False
    return True


def encoding_problem(value: object) -> str | None:
    """Where and why `value` cannot be written as strict JSON, or None when it can."""
    if _is_clean(value):
        return None
    stack: list[tuple[object, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        current, parts = stack.pop()
        if isinstance(current, Mapping):
            for key, child in current.items():
                if not isinstance(key, str):
                    return f"{_path(parts)} has a key that is not a string"
                problem = _scalar_problem(key)
                if problem is not None:
                    return f"a key of {_path(parts)} {problem}"
                stack.append((child, (*parts, key)))
        elif isinstance(current, list | tuple):
            stack.extend((child, (*parts, index)) for index, child in enumerate(current))
        else:
            problem = _scalar_problem(current)
            if problem is not None:
                return f"{_path(parts)} {problem}"
    return None


def item_ref(item: object) -> str | None:
    """The app's id of an item (`id`, else `external_id`…), for reasons and logs."""
    if not isinstance(item, Mapping):
        return None
    for key in _ID_KEYS:
        value = item.get(key)
        if isinstance(value, str) and value and encoding_problem(value) is None:
            return value[:_MAX_REF_CHARS]
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)[:_MAX_REF_CHARS]
    return None


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    return False


def _type_problem(value: object, kind: str) -> str | None:
    """Why `value` does not fit a field of type `kind`; only clear mismatches count."""
    if kind == "bool":
        ok = isinstance(value, bool) or value in (0, 1)
    elif kind in ("number", "decimal"):
        ok = _is_number(value)
    elif kind in ("text", "longtext"):
        ok = not isinstance(value, Mapping | list)
    elif kind in ("date", "datetime"):
        ok = isinstance(value, str | int) and not isinstance(value, bool)
    elif kind == "list":  # one of its options, or several
        ok = isinstance(value, list | str)
    elif kind == "geolocation":
        ok = isinstance(value, Mapping | str)
    else:  # json, or a type this build does not know: anything goes
        ok = True
    return None if ok else f"field '{{name}}' must be {_ARTICLE.get(kind, 'a ' + kind)}"


_ARTICLE: Final = {
    "bool": "true or false",
    "number": "a number",
    "decimal": "a number",
    "text": "text",
    "longtext": "text",
    "date": "a date",
    "datetime": "a date and time",
    "list": "one of its options or a list of them",
    "geolocation": "a location (object or text)",
}


def _fields_problem(item: Mapping[str, object], rules: ItemRules) -> str | None:
    for rule in rules.fields:
        value = item.get(rule.name)
        if value is None or value == "":
            if rule.required:
                return f"field '{rule.name}' is required"
            continue
        problem = _type_problem(value, rule.type)
        if problem is not None:
            return problem.format(name=rule.name)
    return None


def item_problem(item: object, rules: ItemRules = NO_RULES) -> str | None:
    """Why `item` can never be delivered to its resource (with the app's id), or None."""
    ref = item_ref(item)
    what = f"item {ref!r}" if ref is not None else "item"
    if not isinstance(item, Mapping):
        return f"{what} is not a JSON object"
    problem = encoding_problem(item)
    if problem is not None:
        return f"{what} {ENCODING_PREFIX}{problem}"
    problem = _fields_problem(item, rules)
    if problem is not None:
        return f"{what}: {problem}"
    return None


def storable(value: object, *, _depth: int = 0) -> object:
    """`value` with what JSON cannot hold replaced by a description, so that the item can be
    kept in the dead-letter and shown (its poison named rather than lost)."""
    if _depth > _MAX_STORED_DEPTH:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {
            (key if isinstance(key, str) and _scalar_problem(key) is None else repr(key)): (
                storable(child, _depth=_depth + 1)
            )
            for key, child in value.items()
        }
    if isinstance(value, list | tuple):
        return [storable(child, _depth=_depth + 1) for child in value]
    problem = _scalar_problem(value)
    if problem is None:
        return value
    shown = _unsafe_text(value) if isinstance(value, UnsafeNumber) else repr(value)
    return f"<unencodable: {shown:.60}>"


def set_aside(
    items: Sequence[Mapping[str, object]], rules: ItemRules = NO_RULES
) -> tuple[list[Mapping[str, object]], tuple[RejectedItemInput, ...]]:
    """The items that can be pushed, in order, and the others as rejections (with reason)."""
    good: list[Mapping[str, object]] = []
    refused: list[RejectedItemInput] = []
    for item in items:
        problem = item_problem(item, rules)
        if problem is None:
            good.append(item)
        else:
            kept = item if ENCODING_PREFIX not in problem else storable(item)
            refused.append(RejectedItemInput(item=kept, reason=problem))
    return good, tuple(refused)
