"""APP_HEALTH_PATH: absent means no probe; a path under APP_BASE_URL is kept; anything that
is not a plain absolute path is a problem naming the variable."""

from __future__ import annotations

import pytest

from sidecar.config import load_settings
from sidecar.errors import ConfigError


def problems(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return {p.variable: p.message for p in caught.value.problems}


def test_absent_means_no_probe(valid_env: dict[str, str]) -> None:
    assert load_settings(valid_env).settings.app_health_path is None


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_means_no_probe(valid_env: dict[str, str], blank: str) -> None:
    settings = load_settings(valid_env | {"APP_HEALTH_PATH": blank}).settings
    assert settings.app_health_path is None


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("/health", "/health"),
        ("  /health  ", "/health"),
        ("/", "/"),
        ("/api/v1/health.json", "/api/v1/health.json"),
        ("/a..b/_status-ok~", "/a..b/_status-ok~"),
    ],
)
def test_a_path_is_kept(valid_env: dict[str, str], value: str, path: str) -> None:
    loaded = load_settings(valid_env | {"APP_HEALTH_PATH": value})
    assert loaded.settings.app_health_path == path
    assert loaded.warnings == ()


@pytest.mark.parametrize(
    "value",
    [
        "health",
        "http://127.0.0.1/health",
        "/a b",
        "/a\tb",
        "/x?y",
        "/x#y",
        "/a\\b",
        "/../x",
        "/a/../b",
        "/a/..",
        "/santé",
        "/\u2215health",
    ],
)
def test_anything_else_is_a_problem_naming_the_variable(
    valid_env: dict[str, str], value: str
) -> None:
    found = problems(valid_env | {"APP_HEALTH_PATH": value})
    assert set(found) == {"APP_HEALTH_PATH"}
    message = found["APP_HEALTH_PATH"]
    assert "starting with '/'" in message
    assert "/health" in message  # an example of what is expected
    assert repr(value) in message  # what was given


def test_the_problem_is_reported_with_the_others(valid_env: dict[str, str]) -> None:
    env = valid_env | {"APP_HEALTH_PATH": "health", "PORT": "http"}
    assert {"APP_HEALTH_PATH", "PORT"} <= set(problems(env))


@pytest.mark.parametrize("value", ["/a\x01b", "/a\x7fb"])
def test_control_characters_are_a_problem(valid_env: dict[str, str], value: str) -> None:
    assert set(problems(valid_env | {"APP_HEALTH_PATH": value})) == {"APP_HEALTH_PATH"}
