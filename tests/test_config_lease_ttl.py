"""LEASE_TTL_SECONDS: how long a lease outlives its holder's last renewal."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sidecar.config import DEFAULT_LEASE_TTL_SECONDS, load_settings
from sidecar.errors import ConfigError


def test_it_defaults_to_30_seconds(valid_env: dict[str, str]) -> None:
    assert DEFAULT_LEASE_TTL_SECONDS == 30
    assert load_settings(valid_env).settings.lease_ttl_seconds == 30


@pytest.mark.parametrize(("value", "seconds"), [("2.5", 2.5), ("600", 600), (" 45 ", 45)])
def test_a_value_is_kept(valid_env: dict[str, str], value: str, seconds: float) -> None:
    settings = load_settings(valid_env | {"LEASE_TTL_SECONDS": value}).settings
    assert settings.lease_ttl_seconds == seconds


@pytest.mark.parametrize("value", ["0", "0.0", "-1", "soon", "nan", "inf", "100000"])
def test_a_bad_value_names_the_variable(valid_env: dict[str, str], value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(valid_env | {"LEASE_TTL_SECONDS": value})
    problems = {p.variable: p.message for p in caught.value.problems}
    assert list(problems) == ["LEASE_TTL_SECONDS"]
    assert value in problems["LEASE_TTL_SECONDS"]


def test_check_exits_2_with_one_line_for_it(valid_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sidecar", "check"],
        env=os.environ | valid_env | {"LEASE_TTL_SECONDS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if "LEASE_TTL_SECONDS" in line]
    assert len(lines) == 1, result.stderr
    assert "more than 0" in lines[0]
