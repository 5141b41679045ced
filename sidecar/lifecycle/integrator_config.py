"""The values of `owner: integrator` config fields: set by the vendor's app, kept on
ShopiMind through `GET/PUT integration-config` (PROTOCOL §2, §6).

The app states them in its answer to a lifecycle hook (`activated`, `config_updated`):
`{"ok": true, "integrator_config": {"acme_account_id": "A-17"}}`. Each value is checked
against its declared field (only integrator-owned fields, of the field's type); the
current values are read with GET and the merged map is PUT only when something changed.
A bad value is skipped and reported; the others still go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.declaration.model import ConfigField, ConfigSchema
from sidecar.logs import BoundLogger
from sidecar.shopimind.client import ShopimindApi

__all__ = ["IntegratorConfigOutcome", "push_integrator_config"]

_ABSENT = object()

_NUMBER_TYPES = ("number",)
_BOOL_TYPES = ("checkbox",)
_LIST_TYPES = ("multiselect",)


@dataclass(frozen=True, slots=True)
class IntegratorConfigOutcome:
    """What was pushed (keys), and why the other values were not."""

    pushed: tuple[str, ...]
    problems: tuple[str, ...]


def _problem(field: ConfigField, value: object) -> str | None:
    """Why `value` does not fit `field`, or None."""
    if value is None:
        return None  # erases the value
    if field.type in _NUMBER_TYPES:
        fits = isinstance(value, int | float) and not isinstance(value, bool)
        wanted = "a number"
    elif field.type in _BOOL_TYPES:
        fits, wanted = isinstance(value, bool), "true or false"
    elif field.type in _LIST_TYPES:
        fits = isinstance(value, list) and all(isinstance(v, str) for v in value)
        wanted = "a list of strings"
    else:
        fits, wanted = isinstance(value, str), "a string"
    if not fits:
        return f"{field.key}: {field.type} field wants {wanted}"
    options = {option.value for option in field.options}
    chosen = value if isinstance(value, list) else [value]
    if options and any(v not in options for v in chosen):
        return f"{field.key}: not one of the declared options"
    return None


def _checked(
    schema: ConfigSchema, values: Mapping[str, object]
) -> tuple[dict[str, object], list[str]]:
    fields = {f.key: f for f in schema.all_fields()}
    accepted: dict[str, object] = {}
    problems: list[str] = []
    for key, value in values.items():
        field = fields.get(key)
        if field is None:
            problems.append(f"{key}: no such config field")
        elif field.owner != "integrator":
            problems.append(f"{key}: set by the merchant, not by the app (owner: merchant)")
        elif (problem := _problem(field, value)) is not None:
            problems.append(problem)
        else:
            accepted[key] = value
    return accepted, problems


async def push_integrator_config(
    api: ShopimindApi,
    schema: ConfigSchema,
    values: Mapping[str, object],
    *,
    log: BoundLogger,
) -> IntegratorConfigOutcome:
    """Check `values`, then PUT them merged into ShopiMind's current ones when they differ.

    Raises ShopimindError when the API cannot be read or written."""
    accepted, problems = _checked(schema, values)
    for problem in problems:
        log.warning("integrator config value refused", problem=problem)
    if not accepted:
        return IntegratorConfigOutcome((), tuple(problems))
    current = dict(await api.get_integration_config())
    wanted = current | accepted
    changed = sorted(key for key in accepted if current.get(key, _ABSENT) != accepted[key])
    if changed:
        await api.put_integration_config(wanted)
        log.info("integrator config pushed to ShopiMind", keys=changed)
    return IntegratorConfigOutcome(tuple(changed), tuple(problems))
