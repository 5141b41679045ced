"""Tests of the SQLite adapter's own machinery (its file, group commit, backup, migrations):
the store fixture here is SQLite only. What every backend must do is tested one level up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends import Backend


@pytest.fixture
def backend(tmp_path: Path) -> Backend:
    return Backend("sqlite", tmp_path / "store.sqlite")
