"""Helpers shared by the PostgreSQL repositories: rows → records (paging and safe JSON are
the SQLite adapter's own rules, imported so both backends clamp and serialize alike)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sidecar.store.sqlite._rows import MAX_PAGE, page, safe_json

__all__ = ["MAX_PAGE", "page", "record", "safe_json"]

R = TypeVar("R")


def record(cls: type[R], row: Mapping[str, Any], **overrides: Any) -> R:
    """Build the frozen record `cls` from a row whose columns are named like its fields."""
    return cls(**{**row, **overrides})
