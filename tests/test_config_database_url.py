"""DATABASE_URL selects PostgreSQL: validated, never quoted, exclusive with DATABASE_PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config import load_settings
from sidecar.errors import ConfigError
from sidecar.postgres_url import redact_text, redact_url

PASSWORD = "s3cr3t-Pa55w0rd"
URL = f"postgresql://sidecar:{PASSWORD}@db.internal:5432/shop"


def _without_path(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "DATABASE_PATH"}


def problems(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    found = {p.variable: p.message for p in caught.value.problems}
    assert PASSWORD not in str(caught.value)
    return found


def test_database_url_selects_postgresql(valid_env: dict[str, str]) -> None:
    settings = load_settings(_without_path(valid_env) | {"DATABASE_URL": URL}).settings
    assert settings.database_url is not None
    assert settings.database_url.reveal() == URL
    assert settings.database_schema == "shopimind_sidecar"
    assert PASSWORD not in repr(settings)


def test_without_database_url_sqlite_is_used(valid_env: dict[str, str]) -> None:
    settings = load_settings(valid_env).settings
    assert settings.database_url is None


def test_database_url_from_file_and_credential(valid_env: dict[str, str], tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    url_file.write_text(URL + "\n", encoding="utf-8")
    env = _without_path(valid_env) | {"DATABASE_URL_FILE": str(url_file)}
    settings = load_settings(env).settings
    assert settings.database_url is not None
    assert settings.database_url.reveal() == URL
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "database_url").write_text(URL, encoding="utf-8")
    env = _without_path(valid_env) | {"CREDENTIALS_DIRECTORY": str(credentials)}
    settings = load_settings(env).settings
    assert settings.database_url is not None
    assert settings.database_url.reveal() == URL


def test_database_url_and_path_together_is_an_error(valid_env: dict[str, str]) -> None:
    found = problems(valid_env | {"DATABASE_URL": URL})
    assert "DATABASE_PATH" in found["DATABASE_URL"]
    assert "not both" in found["DATABASE_URL"]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (f"mysql://u:{PASSWORD}@h/db", "must start with postgresql://"),
        (f"postgresql://u:{PASSWORD}@h:99999/db", "not a valid URL"),
        (f"postgresql://u:{PASSWORD}@h:5432", "names no database"),
    ],
)
def test_bad_database_url_is_named_without_its_password(
    valid_env: dict[str, str], url: str, fragment: str
) -> None:
    found = problems(_without_path(valid_env) | {"DATABASE_URL": url})
    assert fragment in found["DATABASE_URL"]
    assert "DATABASE_PATH" not in found  # the SQLite path is not checked when a URL is set


@pytest.mark.parametrize("schema", ["Public", "1abc", "a-b", "x" * 64, "a;drop"])
def test_bad_schema_name(valid_env: dict[str, str], schema: str) -> None:
    found = problems(valid_env | {"DATABASE_SCHEMA": schema})
    assert "lower-case SQL name" in found["DATABASE_SCHEMA"]


def test_custom_schema(valid_env: dict[str, str]) -> None:
    env = _without_path(valid_env) | {"DATABASE_URL": URL, "DATABASE_SCHEMA": "sidecar_2"}
    assert load_settings(env).settings.database_schema == "sidecar_2"


def test_redaction_masks_every_form_of_the_password() -> None:
    assert redact_url(URL) == "postgresql://sidecar:***@db.internal:5432/shop"
    assert redact_url("postgresql://h/db?user=u&password=" + PASSWORD) == (
        "postgresql://h/db?user=u&password=***"
    )
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    message = f'connection to "{URL}" failed: password {PASSWORD} rejected'
    assert PASSWORD not in redact_text(message, URL)
