"""JSON at the doors: the one policy for every body the sidecar reads from anyone.

Every door calls `parse_json`: the ShopiMind webhooks and config wizard, the inbound
calls, the admin API, and the answers of both peers (the vendor's app, ShopiMind). A body
is refused, with the rule it broke, when it holds

    invalid_utf8          bytes that are not UTF-8
    nul_character         a NUL character, raw or escaped (\\u0000): no store keeps it
    too_deep              containers nested deeper than MAX_DEPTH
    non_finite_number     NaN, Infinity, or a number no float can hold (1e400)
    integer_out_of_range  an integer outside signed 64 bits (an SQLite INTEGER, an id)
    invalid_json          anything else that is not JSON

A value that passes can be stored and sent again as JSON. A page of items from the
vendor's app is read with `numbers="mark"`: a number breaking the policy becomes an
`UnsafeNumber` in place, which no encoder takes, so the one item holding it is set aside
(rejected, dead-lettered) while the rest of the page flows on. Size is each door's limit,
checked before the body is read (413 `payload_too_large`). Depth is checked before
parsing, without recursion, so a 10,000-deep body costs a scan, not the stack.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Final, Literal

__all__ = [
    "MAX_DEPTH",
    "MAX_INT",
    "MIN_INT",
    "InvalidJsonError",
    "JsonRule",
    "UnsafeNumber",
    "parse_json",
]

MAX_DEPTH: Final = 64
MAX_INT: Final = 2**63 - 1
MIN_INT: Final = -(2**63)
_MAX_INT_DIGITS: Final = len(str(MAX_INT))

JsonRule = Literal[
    "invalid_utf8",
    "nul_character",
    "too_deep",
    "non_finite_number",
    "integer_out_of_range",
    "invalid_json",
]

_ESCAPE: Final = re.compile(r"\\.", re.DOTALL)
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}
_NUMBER_SHAPES: Final = str.maketrans("123456789E+", "000000000e-")
_BRACKETS_ONLY: Final = str.maketrans({chr(c): None for c in range(128) if chr(c) not in "[]{}"})


class InvalidJsonError(ValueError):
    """The body breaks the JSON policy; `rule` names the rule, the message says more
    (never quoting the body)."""

    def __init__(self, rule: JsonRule, message: str) -> None:
        super().__init__(message)
        self.rule: JsonRule = rule


@dataclass(frozen=True, slots=True)
class UnsafeNumber:
    """A number that breaks the policy, kept in its place (`numbers="mark"`). It is no
    JSON value: encoding it raises TypeError, so what holds it is never sent on."""

    rule: JsonRule
    text: str
    """The number as written, at most 40 characters."""


def _reject_constant(name: str) -> object:
    raise InvalidJsonError("non_finite_number", f"{name} is not a finite number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJsonError("non_finite_number", "a number is too large for a float")
    return value


def _int(text: str) -> int:
    # Checked on the digits first: int() of thousands of digits is slow (and refused).
    if len(text.lstrip("-")) > _MAX_INT_DIGITS or not MIN_INT <= (value := int(text)) <= MAX_INT:
        raise InvalidJsonError(
            "integer_out_of_range", "an integer is outside the signed 64-bit range"
        )
    return value


def _marking(parse: Callable[[str], object]) -> Callable[[str], object]:
    def parse_or_mark(text: str) -> object:
        try:
            return parse(text)
        except InvalidJsonError as exc:
            return UnsafeNumber(exc.rule, text[:40])

    return parse_or_mark


def _scan(text: str) -> tuple[int, bool]:
    """How deep the containers of `text` nest, and whether a number in it may break the
    policy (19 digits or more, an exponent of 3 digits or more); strings aside, linear."""
    # Escapes first, so that every quote left opens or closes a string; then the strings.
    # Each step is one C-level pass.
    unescaped = _ESCAPE.sub("", text) if "\\" in text else text
    unquoted = "".join(unescaped.split('"')[::2])
    numbers = unquoted.translate(_NUMBER_SHAPES)
    risky = "0" * 19 in numbers or "e000" in numbers or "e-000" in numbers
    brackets = unquoted.translate(_BRACKETS_ONLY)
    if not brackets.isascii():  # not JSON anyway; json.loads will say so
        brackets = _NOT_BRACKET.sub("", brackets)
    if len(brackets) <= MAX_DEPTH:  # cannot nest deeper than it has brackets
        return len(brackets), risky
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0), risky


def _holds_nul(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(raw: bytes, *, numbers: Literal["refuse", "mark"] = "refuse") -> object:
    """The JSON value in `raw` (UTF-8); InvalidJsonError when it breaks the policy.

    `numbers="mark"`: a non-finite or out-of-range number becomes an UnsafeNumber instead
    of refusing the whole body (every other rule still refuses it).
    """

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJsonError("invalid_utf8", "body is not UTF-8") from None
    if "\x00" in text:
        raise InvalidJsonError("nul_character", "body holds a NUL character")
    depth, risky = _scan(text)
    if depth > MAX_DEPTH:
        raise InvalidJsonError("too_deep", f"body nests deeper than {MAX_DEPTH} levels")
    # Every number is checked only when one may break the policy: json's own C parsing
    # of numbers is several times faster than a hook per number.
    hooks: dict[str, Callable[[str], object]] = {
        "parse_constant": _reject_constant,
        "parse_float": _float if risky else float,
        "parse_int": _int if risky else int,
    }
    if numbers == "mark":
        hooks = {
            name: hook if hook in (float, int) else _marking(hook) for name, hook in hooks.items()
        }
    try:
        value = json.loads(
            text,
            parse_constant=hooks["parse_constant"],
            parse_float=hooks["parse_float"],
            parse_int=hooks["parse_int"],
        )
    except InvalidJsonError:
        raise
    except RecursionError:  # pragma: no cover - the scan above bounds the depth
        raise InvalidJsonError("too_deep", f"body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError
        raise InvalidJsonError("invalid_json", f"body is not JSON ({type(exc).__name__})") from None
    if "\\u0000" in text and _holds_nul(value):
        raise InvalidJsonError("nul_character", "body holds a NUL character (\\u0000)")
    return value
