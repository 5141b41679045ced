"""Helpers for the declaration tests: read TOML text, and look at the problems found."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest

from sidecar.declaration import Declaration, parse_declaration
from sidecar.errors import DeclarationError, DeclarationProblem

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "integration.toml"
FILE = "integration.toml"
HEAD = """\
slug = "demo"

[meta]
name = "Demo"
version = "1.0.0"
"""
"""The smallest valid declaration; tests append the tables they are about."""


def _data(text: str, head: bool) -> object:
    return tomllib.loads((HEAD if head else "") + textwrap.dedent(text))


def declare(text: str = "", *, head: bool = True) -> Declaration:
    """The declaration `text` (after HEAD) describes; fails the test on any problem."""
    return parse_declaration(_data(text, head), origin=FILE)


def problems(text: str, *, head: bool = True) -> list[DeclarationProblem]:
    """Every problem of `text` (after HEAD); fails the test when it is valid."""
    with pytest.raises(DeclarationError) as caught:
        parse_declaration(_data(text, head), origin=FILE)
    assert caught.value.problems, "a DeclarationError must carry its problems"
    return list(caught.value.problems)


def only_problem(text: str, *, head: bool = True) -> DeclarationProblem:
    """The one problem of `text`; fails the test when there are none or several."""
    found = problems(text, head=head)
    assert len(found) == 1, [str(p) for p in found]
    assert found[0].file == FILE
    return found[0]


def reasons(text: str, *, head: bool = True) -> dict[str, str]:
    """Problems by path (one per path), for files with several mistakes."""
    found = problems(text, head=head)
    by_path = {p.path: p.reason for p in found}
    assert len(by_path) == len(found), [str(p) for p in found]
    return by_path
