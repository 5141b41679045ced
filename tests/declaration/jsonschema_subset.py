"""Just enough of a JSON Schema validator to check the declaration's schema in tests.

It knows the keywords `declaration_json_schema()` uses and refuses any other, so a
keyword it would silently skip cannot creep into the schema. (No validator library is a
dependency of the project.)
"""

from __future__ import annotations

import re
from typing import Any

_ANNOTATIONS = frozenset({"$schema", "$defs", "title", "description", "default"})
_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def errors(instance: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "") -> list[str]:
    """Where `instance` breaks `schema` (empty when it is valid)."""
    found: list[str] = []
    for keyword, value in schema.items():
        found += _keyword(keyword, value, instance, schema, root, at)
    return found


def _keyword(
    keyword: str, value: Any, instance: Any, schema: dict[str, Any], root: dict[str, Any], at: str
) -> list[str]:
    is_object, is_array = isinstance(instance, dict), isinstance(instance, list)
    is_number = _TYPES["number"](instance)
    if keyword in _ANNOTATIONS:
        return []
    if keyword == "$ref":
        name = value.removeprefix("#/$defs/")
        return errors(instance, root["$defs"][name], root, at)
    if keyword == "type":
        return [] if _TYPES[value](instance) else [f"{at}: not {value}"]
    if keyword == "enum":
        return [] if instance in value else [f"{at}: {instance!r} not in {value}"]
    if keyword == "pattern":
        matches = not isinstance(instance, str) or re.search(value, instance) is not None
        return [] if matches else [f"{at}: {instance!r} !~ {value}"]
    if keyword in ("minimum", "maximum"):
        within = not is_number or (instance >= value if keyword == "minimum" else instance <= value)
        return [] if within else [f"{at}: {instance} breaks {keyword} {value}"]
    if keyword == "properties":
        if not is_object:
            return []
        return [
            e
            for name, sub in value.items()
            if name in instance
            for e in errors(instance[name], sub, root, f"{at}.{name}")
        ]
    if keyword == "required":
        return [f"{at}: missing {name}" for name in value if is_object and name not in instance]
    if keyword == "additionalProperties":
        if not is_object:
            return []
        extra = [name for name in instance if name not in schema.get("properties", {})]
        if value is False:
            return [f"{at}: unexpected {name}" for name in extra]
        return [e for name in extra for e in errors(instance[name], value, root, f"{at}.{name}")]
    if keyword == "propertyNames":
        return [e for name in instance for e in errors(name, value, root, at)] if is_object else []
    if keyword == "minProperties":
        return [f"{at}: too few keys"] if is_object and len(instance) < value else []
    if keyword == "items":
        if not is_array:
            return []
        return [
            e for i, item in enumerate(instance) for e in errors(item, value, root, f"{at}[{i}]")
        ]
    if keyword == "minItems":
        return [f"{at}: too few items"] if is_array and len(instance) < value else []
    if keyword == "uniqueItems":
        repeated = is_array and len({repr(i) for i in instance}) != len(instance)
        return [f"{at}: repeated items"] if value and repeated else []
    if keyword == "anyOf":
        matched = any(not errors(instance, sub, root, at) for sub in value)
        return [] if matched else [f"{at}: matches no branch of anyOf"]
    if keyword == "not":
        forbidden = not errors(instance, value, root, at)
        return [f"{at}: matches a forbidden schema"] if forbidden else []
    raise AssertionError(f"keyword {keyword!r} is not supported by this test validator")
