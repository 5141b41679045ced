"""Environment → settings: every variable, every problem reported at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.config import Secret, load_settings
from sidecar.errors import ConfigError
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX, WEBHOOK_SECRET


def problems(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return {p.variable: p.message for p in caught.value.problems}


def test_valid_environment_with_defaults(valid_env: dict[str, str]) -> None:
    loaded = load_settings(valid_env)
    settings = loaded.settings
    assert loaded.warnings == ()
    assert [s.reveal() for s in settings.webhook_secrets] == [WEBHOOK_SECRET]
    assert settings.credentials_key is not None
    assert settings.credentials_key.reveal() == bytes.fromhex(CREDENTIALS_KEY_HEX)
    assert settings.app_secret.reveal() == APP_SECRET
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.admin_token is None
    assert settings.admin_port is None
    assert settings.shopimind_core_api_base == "https://core.shopimind.com"
    assert settings.app_base_url == "http://127.0.0.1:8000/shopimind"
    assert (settings.sync_interval_minutes, settings.sync_workers) == (15, 4)
    assert (settings.backfill_days, settings.overlap_seconds) == (365, 0)
    assert (settings.retention_days, settings.dead_letter_retention_days) == (90, 90)
    assert settings.audit_retention_days == 365
    assert settings.drain_timeout_seconds == 10.0
    assert settings.signature_tolerance_seconds == 300
    assert (settings.log_level, settings.log_format) == ("info", "json")


def test_every_variable_is_read(valid_env: dict[str, str]) -> None:
    env = valid_env | {
        "HOST": "0.0.0.0",
        "PORT": "9000",
        "ADMIN_TOKEN": "a" * 40,
        "ADMIN_HOST": "::1",
        "ADMIN_PORT": "9100",
        "SHOPIMIND_CORE_API_BASE": "http://127.0.0.1:9999/",
        "SYNC_INTERVAL_MINUTES": "0",
        "SYNC_WORKERS": "8",
        "PUSH_CONCURRENCY": "6",
        "BACKFILL_DAYS": "30",
        "OVERLAP_SECONDS": "120",
        "RETENTION_DAYS": "30",
        "AUDIT_RETENTION_DAYS": "0",
        "DRAIN_TIMEOUT_SECONDS": "2.5",
        "SIGNATURE_TOLERANCE_SECONDS": "120",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "text",
    }
    settings = load_settings(env).settings
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert settings.admin_token == Secret("a" * 40)
    assert (settings.admin_host, settings.admin_port) == ("::1", 9100)
    assert settings.shopimind_core_api_base == "http://127.0.0.1:9999"
    assert settings.sync_interval_minutes == 0
    assert settings.sync_workers == 8
    assert settings.push_concurrency == 6
    assert (settings.backfill_days, settings.overlap_seconds) == (30, 120)
    # the dead-letter follows RETENTION_DAYS unless it is set on its own
    assert (settings.retention_days, settings.dead_letter_retention_days) == (30, 30)
    assert settings.audit_retention_days == 0
    assert settings.drain_timeout_seconds == 2.5
    assert settings.signature_tolerance_seconds == 120
    assert (settings.log_level, settings.log_format) == ("debug", "text")


def test_rotation_list(valid_env: dict[str, str]) -> None:
    settings = load_settings(valid_env | {"WEBHOOK_SECRET": " new ,old,, "}).settings
    assert [s.reveal() for s in settings.webhook_secrets] == ["new", "old"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ab" * 31, "got 62 characters (31 bytes)"),
        ("ab" * 33, "got 66 characters (33 bytes)"),
        ("zz" * 32, "not hex"),
        ("0x" + "ab" * 31, "not hex"),
    ],
)
def test_credentials_key_must_be_64_hex(
    valid_env: dict[str, str], value: str, fragment: str
) -> None:
    found = problems(valid_env | {"CREDENTIALS_KEY": value})
    assert "64 hex characters (32 bytes)" in found["CREDENTIALS_KEY"]
    assert fragment in found["CREDENTIALS_KEY"]
    assert value not in found["CREDENTIALS_KEY"]  # a secret is never echoed


def test_missing_credentials_key_is_an_error(valid_env: dict[str, str]) -> None:
    del valid_env["CREDENTIALS_KEY"]
    assert "openssl rand -hex 32" in problems(valid_env)["CREDENTIALS_KEY"]


def test_plaintext_secrets_allowed_explicitly_with_a_loud_warning(
    valid_env: dict[str, str],
) -> None:
    del valid_env["CREDENTIALS_KEY"]
    loaded = load_settings(valid_env | {"ALLOW_PLAINTEXT_SECRETS": "true"})
    assert loaded.settings.credentials_key is None
    assert any("UNENCRYPTED" in warning for warning in loaded.warnings)
    assert (
        "must be true or false"
        in problems(valid_env | {"ALLOW_PLAINTEXT_SECRETS": "maybe"})["ALLOW_PLAINTEXT_SECRETS"]
    )


@pytest.mark.parametrize(
    ("value", "fragment"), [("", "is empty"), (",,,", "only commas"), (" , ,", "only commas")]
)
def test_webhook_secret_empty_or_only_commas(
    valid_env: dict[str, str], value: str, fragment: str
) -> None:
    assert fragment in problems(valid_env | {"WEBHOOK_SECRET": value})["WEBHOOK_SECRET"]


def test_webhook_secret_missing(valid_env: dict[str, str]) -> None:
    del valid_env["WEBHOOK_SECRET"]
    assert "is required" in problems(valid_env)["WEBHOOK_SECRET"]


@pytest.mark.parametrize("value", ["abc", "80.5", "70000", "-1", "65536", "1e3", "0x50"])
def test_port_must_be_a_number_in_range(valid_env: dict[str, str], value: str) -> None:
    message = problems(valid_env | {"PORT": value})["PORT"]
    assert message == f"must be a whole number from 0 to 65535; got {value!r}"


def test_admin_port_is_checked_too(valid_env: dict[str, str]) -> None:
    assert "0 to 65535" in problems(valid_env | {"ADMIN_PORT": "http"})["ADMIN_PORT"]


def test_database_folder_missing(valid_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "nope" / "sidecar.sqlite"
    message = problems(valid_env | {"DATABASE_PATH": str(path)})["DATABASE_PATH"]
    assert f"folder {path.parent} does not exist" in message


def test_database_path_is_a_folder(valid_env: dict[str, str], tmp_path: Path) -> None:
    assert "is a folder" in problems(valid_env | {"DATABASE_PATH": str(tmp_path)})["DATABASE_PATH"]


def test_database_file_that_is_not_sqlite(valid_env: dict[str, str], tmp_path: Path) -> None:
    impostor = tmp_path / "data" / "sidecar.sqlite"
    impostor.write_bytes(b"PK\x03\x04 this is a zip file, not a database")
    before = impostor.read_bytes()
    message = problems(valid_env)["DATABASE_PATH"]
    assert "is not an SQLite database" in message
    assert impostor.read_bytes() == before
    assert sorted(p.name for p in impostor.parent.iterdir()) == ["sidecar.sqlite"]


def test_database_folder_read_only(valid_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    env = valid_env | {"DATABASE_PATH": str(folder / "sidecar.sqlite")}
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            assert "is not writable" in problems(env)["DATABASE_PATH"]
        finally:
            folder.chmod(0o755)
        return
    # Root ignores permission bits: make the folder a read-only mount in a private mount
    # namespace and run `check` there.
    script = (
        f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
        f"exec {sys.executable} -m sidecar check"
    )
    try:
        result = subprocess.run(
            ["unshare", "-m", "sh", "-c", script],
            env=os.environ | env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if "mount:" in result.stderr or "unshare:" in result.stderr:
        pytest.skip(f"cannot make a read-only mount here: {result.stderr.strip()}")
    assert result.returncode == 2, result.stderr
    assert "DATABASE_PATH: folder" in result.stderr
    assert "Read-only file system" in result.stderr


def test_secret_file_missing(valid_env: dict[str, str], tmp_path: Path) -> None:
    del valid_env["WEBHOOK_SECRET"]
    missing = tmp_path / "missing-secret"
    found = problems(valid_env | {"WEBHOOK_SECRET_FILE": str(missing)})
    assert found["WEBHOOK_SECRET_FILE"] == f"no such file: {missing}"


def test_secrets_from_files_and_credentials_directory(
    valid_env: dict[str, str], tmp_path: Path
) -> None:
    for name in ("WEBHOOK_SECRET", "CREDENTIALS_KEY", "APP_SECRET"):
        del valid_env[name]
    secret_file = tmp_path / "webhook"
    secret_file.write_text("from-file-1,from-file-2\n", encoding="utf-8")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "credentials_key").write_text(CREDENTIALS_KEY_HEX + "\n", encoding="utf-8")
    (credentials / "app_secret").write_text("from-credential", encoding="utf-8")
    (credentials / "admin_token").write_text("t" * 32, encoding="utf-8")
    env = valid_env | {
        "WEBHOOK_SECRET_FILE": str(secret_file),
        "CREDENTIALS_DIRECTORY": str(credentials),
    }
    settings = load_settings(env).settings
    assert [s.reveal() for s in settings.webhook_secrets] == ["from-file-1", "from-file-2"]
    assert settings.credentials_key == Secret(bytes.fromhex(CREDENTIALS_KEY_HEX))
    assert settings.app_secret.reveal() == "from-credential"
    assert settings.admin_token == Secret("t" * 32)
    # The environment wins over a credential.
    assert load_settings(env | {"APP_SECRET": "env"}).settings.app_secret.reveal() == "env"


def test_variable_and_file_together_is_ambiguous(valid_env: dict[str, str], tmp_path: Path) -> None:
    secret_file = tmp_path / "s"
    secret_file.write_text("x", encoding="utf-8")
    found = problems(valid_env | {"APP_SECRET_FILE": str(secret_file)})
    assert found["APP_SECRET"] == "set either APP_SECRET or APP_SECRET_FILE, not both"


def test_secret_file_that_is_not_text(valid_env: dict[str, str], tmp_path: Path) -> None:
    del valid_env["APP_SECRET"]
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00secret")
    message = problems(valid_env | {"APP_SECRET_FILE": str(binary)})["APP_SECRET_FILE"]
    assert message == f"{binary} is not UTF-8 text"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("http://core.shopimind.com", "must use https://"),
        ("ftp://core.shopimind.com", "absolute http:// or https:// URL"),
        ("core.shopimind.com", "absolute http:// or https:// URL"),
        ("https://user:pw@core.shopimind.com", "must not embed credentials"),
        ("https://core.shopimind.com/?x=1", "query or fragment"),
        ("https://core.shopimind.com:99999", "absolute http:// or https:// URL"),
    ],
)
def test_shopimind_api_base(valid_env: dict[str, str], value: str, fragment: str) -> None:
    assert (
        fragment
        in problems(valid_env | {"SHOPIMIND_CORE_API_BASE": value})["SHOPIMIND_CORE_API_BASE"]
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.8.9.10"])
def test_plain_http_is_fine_on_loopback(valid_env: dict[str, str], host: str) -> None:
    env = valid_env | {"SHOPIMIND_CORE_API_BASE": f"http://{host}:9000"}
    assert load_settings(env).settings.shopimind_core_api_base == f"http://{host}:9000"


def test_plain_http_app_on_the_network_is_a_warning(valid_env: dict[str, str]) -> None:
    loaded = load_settings(valid_env | {"APP_BASE_URL": "http://10.0.0.5/shopimind"})
    assert any("travel unencrypted" in warning for warning in loaded.warnings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SYNC_WORKERS", "0"),
        ("SYNC_WORKERS", "many"),
        ("PUSH_CONCURRENCY", "0"),
        ("PUSH_CONCURRENCY", "17"),
        ("SYNC_INTERVAL_MINUTES", "-5"),
        ("BACKFILL_DAYS", "0"),
        ("OVERLAP_SECONDS", "1.5"),
        ("RETENTION_DAYS", "-1"),
        ("DRAIN_TIMEOUT_SECONDS", "nan"),
        ("DRAIN_TIMEOUT_SECONDS", "0"),
        ("DRAIN_TIMEOUT_SECONDS", "inf"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_FORMAT", "xml"),
        ("HOST", "not a host!"),
        ("APP_BASE_URL", "127.0.0.1:8000"),
    ],
)
def test_bad_values_name_their_variable(
    valid_env: dict[str, str], variable: str, value: str
) -> None:
    found = problems(valid_env | {variable: value})
    assert list(found) == [variable]
    assert repr(value) in found[variable]


def test_every_problem_is_reported_at_once(valid_env: dict[str, str], tmp_path: Path) -> None:
    del valid_env["APP_SECRET"]
    env = valid_env | {
        "CREDENTIALS_KEY": "abc",
        "WEBHOOK_SECRET": ",",
        "PORT": "http",
        "DATABASE_PATH": str(tmp_path / "missing" / "db.sqlite"),
        "INTEGRATION_FILE": str(tmp_path / "nope.toml"),
    }
    found = problems(env)
    assert set(found) == {
        "CREDENTIALS_KEY",
        "WEBHOOK_SECRET",
        "PORT",
        "DATABASE_PATH",
        "INTEGRATION_FILE",
        "APP_SECRET",
    }


def test_secrets_never_show_in_repr(valid_env: dict[str, str]) -> None:
    settings = load_settings(valid_env | {"ADMIN_TOKEN": "adm_" + "x" * 40}).settings
    text = repr(settings) + str(settings)
    for secret in (WEBHOOK_SECRET, APP_SECRET, CREDENTIALS_KEY_HEX, "adm_", "xxxxxxxx"):
        assert secret not in text
    assert "o\\xa1" not in text  # the key's bytes
    assert f"{settings.app_secret}" == "[redacted]"


def test_short_admin_token_is_a_warning(valid_env: dict[str, str]) -> None:
    loaded = load_settings(valid_env | {"ADMIN_TOKEN": "short"})
    assert any("ADMIN_TOKEN is shorter than 32" in warning for warning in loaded.warnings)


def test_empty_optional_variables_mean_default(valid_env: dict[str, str]) -> None:
    settings = load_settings(
        valid_env | {"PORT": "", "ADMIN_PORT": " ", "ADMIN_TOKEN": ""}
    ).settings
    assert (settings.port, settings.admin_port, settings.admin_token) == (8080, None, None)
