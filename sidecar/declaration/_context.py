"""Where problems are collected while a declaration is read, and how they are worded.

Validation never stops at the first mistake: every node of the file's spec reports into
one `Context` and returns `INVALID` for what it could not read, so a vendor sees every
problem of a file in one run. The context also remembers what each table's keys parsed
to, so a rule that spans sections (a sync step naming a custom data definition) can look
at a section read before it, and stay silent when that section was itself wrong rather
than report a misleading second error.
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
from collections.abc import Iterable
from typing import Final, TypeAlias, TypeVar

from sidecar.declaration.model import ProvisioningPlan
from sidecar.errors import DeclarationProblem

__all__ = [
    "INVALID",
    "Context",
    "Invalid",
    "Loc",
    "did_you_mean",
    "format_path",
    "listing",
    "shown",
]

Loc: TypeAlias = tuple[str | int, ...]
"""A place in the file: table keys and array indexes, e.g. `("sync", 1, "target")`."""

T = TypeVar("T")

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


class Invalid:
    """The value of something that could not be read; its problems are already reported."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = Invalid()


def format_path(at: Loc) -> str:
    """`sync[1].target`; a key that is not a bare TOML key is quoted: `inbound."a b"`."""
    out: list[str] = []
    for part in at:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            out.append(f".{name}" if out else name)
    return "".join(out)


def shown(value: object) -> str:
    """A value as a message quotes it: short, and in TOML/JSON spelling."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


def listing(options: Iterable[str]) -> str:
    """`a, b, c` — the choices a message offers."""
    return ", ".join(options)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`; did you mean 'batch_size'?` when `word` looks like a typo of one option, else ``."""
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _kind(raw: object, table: str) -> str:
    if isinstance(raw, bool):
        return f"a boolean ({shown(raw)})"
    if isinstance(raw, int):
        return f"an integer ({raw})"
    if isinstance(raw, float):
        return f"a float ({raw})"
    if isinstance(raw, str):
        return f"a string ({shown(raw)})"
    if isinstance(raw, list):
        return "an array"
    if isinstance(raw, dict):
        return table
    if isinstance(raw, datetime.date | datetime.time):
        return "a date/time"
    if raw is None:
        return "null"
    return type(raw).__name__


class Context:
    """Collects the problems of one file (or one app answer) and the values read so far."""

    def __init__(
        self, file: str, *, table_word: str = "a table", base: ProvisioningPlan | None = None
    ) -> None:
        self.file = file
        self.table_word = table_word
        """What a message calls a mapping: `a table` in TOML, `an object` in the app's JSON."""
        self.base = base if base is not None else ProvisioningPlan()
        """The plan a dynamic plan is appended to: its keys and names may be referenced."""
        self.problems: list[DeclarationProblem] = []
        self._values: dict[Loc, object] = {}

    def problem(self, at: Loc, reason: str) -> None:
        """Report that the value at `at` breaks a rule; `reason` says which and how to fix it."""
        self.problems.append(DeclarationProblem(self.file, format_path(at), reason))

    def wrong_type(self, at: Loc, expected: str, raw: object) -> None:
        """Report a value of the wrong type, naming the type expected."""
        self.problem(at, f"expected {expected}, got {_kind(raw, self.table_word)}")

    def remember(self, at: Loc, value: object) -> None:
        """Record what the key at `at` parsed to (`INVALID` when it could not be read)."""
        self._values[at] = value

    def lookup(self, at: Loc, default: T, kind: type[T]) -> T | None:
        """What `at` parsed to; `default` when it is absent; None when it (or a table
        holding it) was invalid, so that rules depending on it are skipped."""
        if at in self._values:
            value = self._values[at]
            return value if isinstance(value, kind) else None
        for depth in range(len(at) - 1, 0, -1):
            if isinstance(self._values.get(at[:depth]), Invalid):
                return None
        return default
