"""Reading `integration.toml`, and the app's dynamic provisioning plan, into the model.

Both go through the nodes of the file's spec (`_root`, `_provisioning`…), so a dynamic
plan obeys exactly the rules of a static one. Nothing stops at the first mistake: a
`DeclarationError` lists every problem, each as `file: dotted.path[index]: reason`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from sidecar.declaration._context import Context, Invalid
from sidecar.declaration._provisioning import PLAN
from sidecar.declaration._root import DECLARATION
from sidecar.declaration.model import Declaration, ProvisioningPlan
from sidecar.errors import DeclarationError, DeclarationProblem

__all__ = ["load_declaration", "parse_declaration", "parse_provisioning_plan"]


def _read(path: Path) -> str:
    file = str(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        reason = "no such file; write one (see examples/integration.toml) or set INTEGRATION_FILE"
    except IsADirectoryError:
        reason = "is a folder; INTEGRATION_FILE must name the declaration file itself"
    except UnicodeDecodeError:
        reason = "is not UTF-8 text; TOML files are UTF-8"
    except OSError as exc:
        reason = f"cannot be read: {exc.strerror or type(exc).__name__}"
    raise DeclarationError([DeclarationProblem(file, "", reason)])


def load_declaration(path: Path) -> Declaration:
    """Read and validate the declaration file; raise `DeclarationError` listing every problem."""
    text = _read(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends with "(at line L, column C)"
        problem = DeclarationProblem(str(path), "", f"not valid TOML: {exc}")
        raise DeclarationError([problem]) from None
    return parse_declaration(data, origin=str(path), source=path)


def parse_declaration(data: object, *, origin: str, source: Path | None = None) -> Declaration:
    """Validate an already parsed declaration (a TOML document as a dict).

    `origin` names it in problems; `source` is recorded as `Declaration.source`.
    """
    ctx = Context(origin)
    declaration = DECLARATION.parse(data, (), ctx, extra={"source": source})
    if ctx.problems or isinstance(declaration, Invalid):
        raise DeclarationError(ctx.problems)
    return declaration


def parse_provisioning_plan(
    data: object, *, origin: str, base: ProvisioningPlan | None = None
) -> ProvisioningPlan:
    """Validate a provisioning plan given as JSON (the app's answer to `POST /provisioning`).

    It has the `[provisioning]` table's shape without `dynamic`: `data_sources`,
    `custom_data`, `events`, `order_statuses`. `base` is the plan it will be appended to
    (the static one): its sources may be parents and its definitions relationship
    targets, and they must not be declared again. Problems name `origin` as their file.
    """
    ctx = Context(origin, table_word="an object", base=base)
    plan = PLAN.parse(data, (), ctx)
    if ctx.problems or isinstance(plan, Invalid):
        raise DeclarationError(ctx.problems)
    return plan
