"""Parsing request bodies as JSON, safely: one place for what counts as valid JSON input.

`json.loads` alone accepts NaN, recurses until the interpreter gives up on a deeply
nested array, and raises assorted exceptions. Here every bad body becomes
`InvalidJsonError`, and nesting deeper than `MAX_DEPTH` is refused.
"""

from __future__ import annotations

import json
from typing import Final

__all__ = ["MAX_DEPTH", "InvalidJsonError", "parse_json"]

MAX_DEPTH: Final = 64


class InvalidJsonError(ValueError):
    """The body is not acceptable JSON; the message says why (never quoting the body)."""


def _reject_constant(name: str) -> object:
    raise InvalidJsonError(f"{name} is not valid JSON")


def _depth(value: object) -> int:
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json(raw: bytes) -> object:
    """The JSON value in `raw` (UTF-8); InvalidJsonError when it is not acceptable."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InvalidJsonError("body is not UTF-8") from None
    except RecursionError:
        raise InvalidJsonError(f"body nests deeper than {MAX_DEPTH} levels") from None
    except InvalidJsonError:
        raise
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        raise InvalidJsonError(f"body is not JSON ({type(exc).__name__})") from None
    if _depth(value) > MAX_DEPTH:
        raise InvalidJsonError(f"body nests deeper than {MAX_DEPTH} levels")
    return value
