"""MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT, HEADER_TIMEOUT_SECONDS, BODY_TIMEOUT_SECONDS:
defaults, values kept, and bad values named with what is expected."""

from __future__ import annotations

import pytest

from sidecar.config import load_settings
from sidecar.errors import ConfigError


def problems(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return {p.variable: p.message for p in caught.value.problems}


def test_defaults(valid_env: dict[str, str]) -> None:
    settings = load_settings(valid_env).settings
    assert settings.max_connections == 1024
    assert settings.max_connections_per_client == 256
    assert settings.header_timeout_seconds == 10
    assert settings.body_timeout_seconds == 30


def test_values_are_kept(valid_env: dict[str, str]) -> None:
    settings = load_settings(
        valid_env
        | {
            "MAX_CONNECTIONS": "3000",
            "MAX_CONNECTIONS_PER_CLIENT": "3000",
            "HEADER_TIMEOUT_SECONDS": "2.5",
            "BODY_TIMEOUT_SECONDS": "120",
        }
    ).settings
    assert settings.max_connections == 3000
    assert settings.max_connections_per_client == 3000
    assert settings.header_timeout_seconds == 2.5
    assert settings.body_timeout_seconds == 120


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAX_CONNECTIONS", "0"),
        ("MAX_CONNECTIONS", "many"),
        ("MAX_CONNECTIONS", "10.5"),
        ("MAX_CONNECTIONS_PER_CLIENT", "-1"),
        ("HEADER_TIMEOUT_SECONDS", "0"),
        ("HEADER_TIMEOUT_SECONDS", "inf"),
        ("BODY_TIMEOUT_SECONDS", "nan"),
        ("BODY_TIMEOUT_SECONDS", "7200"),
    ],
)
def test_bad_values_name_their_variable(
    valid_env: dict[str, str], variable: str, value: str
) -> None:
    found = problems(valid_env | {variable: value})
    assert list(found) == [variable]
    assert repr(value) in found[variable] or value in found[variable]
