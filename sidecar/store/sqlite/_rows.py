"""Helpers shared by the SQLite repositories: rows → records, paging, safe JSON."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, TypeVar

__all__ = ["MAX_PAGE", "page", "record", "safe_json"]

R = TypeVar("R")

MAX_PAGE = 1000
_MAX_OFFSET = 2**63 - 1  # SQLite's largest integer
"""The most rows one listing returns, whatever the caller asks."""


def record(cls: type[R], row: sqlite3.Row, **overrides: Any) -> R:
    """Build the frozen record `cls` from a row whose columns are named like its fields."""
    return cls(**{**{key: row[key] for key in row.keys()}, **overrides})  # noqa: SIM118 - a Row iterates values


def page(limit: int, offset: int) -> tuple[int, int]:
    """A listing's bounds, clamped to 1..MAX_PAGE rows and an offset SQLite can bind."""
    return max(1, min(int(limit), MAX_PAGE)), max(0, min(int(offset), _MAX_OFFSET))


def safe_json(value: object) -> str:
    """`value` as JSON; never raises (a circular or odd value becomes an explanation)."""
    try:
        return json.dumps(value, default=str, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        return json.dumps(
            {"error": "unserializable value", "detail": f"{type(exc).__name__}: {exc}"[:500]}
        )
