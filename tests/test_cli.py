"""The command line, run as a real subprocess: `python -m sidecar …`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from sidecar import __version__
from sidecar.store.sqlite import MIGRATIONS
from tests.conftest import APP_SECRET, CREDENTIALS_KEY_HEX, WEBHOOK_SECRET


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in env and not k.endswith("_SECRET")}
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_valid_environment_exits_0(valid_env: dict[str, str]) -> None:
    result = run(valid_env, "check")
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
    for secret in (WEBHOOK_SECRET, APP_SECRET, CREDENTIALS_KEY_HEX):
        assert secret not in result.stdout + result.stderr


def test_check_reports_each_problem_on_its_own_line(
    valid_env: dict[str, str], tmp_path: Path
) -> None:
    readonly = Path("/proc/sidecar.sqlite")  # a folder nobody can create files in
    impostor = tmp_path / "data" / "sidecar.sqlite"
    impostor.write_text("not a database", encoding="utf-8")
    cases = {
        "CREDENTIALS_KEY": {"CREDENTIALS_KEY": "ab" * 31},
        "WEBHOOK_SECRET": {"WEBHOOK_SECRET": ",,"},
        "PORT": {"PORT": "eighty"},
        "DATABASE_PATH": {"DATABASE_PATH": str(readonly)},
        "APP_SECRET_FILE": {"APP_SECRET_FILE": str(tmp_path / "absent")},
    }
    env = valid_env.copy()
    del env["APP_SECRET"]
    for change in cases.values():
        env |= change
    result = run(env, "check")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert sorted(line.split(":")[0] for line in lines) == sorted(cases)
    assert result.stdout == ""


def test_check_names_a_file_that_is_not_sqlite(valid_env: dict[str, str]) -> None:
    impostor = Path(valid_env["DATABASE_PATH"])
    impostor.write_text("not a database", encoding="utf-8")
    result = run(valid_env, "check")
    assert result.returncode == 2
    assert result.stderr.startswith("DATABASE_PATH: ")
    assert "not an SQLite database" in result.stderr
    assert impostor.read_text(encoding="utf-8") == "not a database"


def test_plaintext_mode_warns_loudly(valid_env: dict[str, str]) -> None:
    env = valid_env | {"CREDENTIALS_KEY": "", "ALLOW_PLAINTEXT_SECRETS": "yes"}
    result = run(env, "check")
    assert result.returncode == 0
    assert "UNENCRYPTED" in result.stderr


def test_migrate_creates_the_schema_and_is_idempotent(valid_env: dict[str, str]) -> None:
    first = run(valid_env, "migrate")
    assert first.returncode == 0, first.stderr
    assert f"schema version {len(MIGRATIONS)}" in first.stdout
    assert '"database migrated"' in first.stderr  # JSON log line on stderr
    second = run(valid_env, "migrate")
    assert second.returncode == 0
    assert "database migrated" not in second.stderr
    path = Path(valid_env["DATABASE_PATH"])
    assert path.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrate_refuses_a_file_that_is_not_sqlite_even_without_check(
    valid_env: dict[str, str],
) -> None:
    impostor = Path(valid_env["DATABASE_PATH"])
    impostor.write_bytes(b"\x00" * 100)
    result = run(valid_env, "migrate")
    assert result.returncode == 2
    assert impostor.read_bytes() == b"\x00" * 100


def test_version_and_usage() -> None:
    version = run({}, "--version")
    assert version.returncode == 0
    assert __version__ in version.stdout
    assert "SQLite" in version.stdout
    usage = run({}, "frobnicate")
    assert usage.returncode == 2
    assert "invalid choice" in usage.stderr


async def test_installations_lists_cursors_and_last_run(valid_env: dict[str, str]) -> None:
    from sidecar.security.cipher import AesGcmCipher
    from sidecar.store import InstallationUpsert
    from sidecar.store.records import ResumePoint
    from sidecar.store.sqlite import open_sqlite_store

    store = await open_sqlite_store(
        Path(valid_env["DATABASE_PATH"]), cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX))
    )
    await store.installations.upsert(
        InstallationUpsert(installation_id="inst_7", status="active", shop_domain="shop.example")
    )
    await store.cursors.record_success(
        "inst_7", "customers", "", synced_at="2026-11-26T08:00:00.000Z", items=12
    )
    await store.cursors.record_failure("inst_7", "orders", "store-1", error="app down", items=0)
    await store.cursors.save_resume_point(
        ResumePoint(
            installation_id="inst_7",
            entity="orders",
            source_key="store-1",
            run_kind="full",
            window_since="a",
            window_until="b",
            next_token="t",
            pages=3,
            items=1500,
        )
    )
    run_id = await store.runs.start("inst_7", "full")
    await store.runs.finish(run_id, "partial", {})
    await store.aclose()

    listing = run(valid_env, "installations")
    assert listing.returncode == 0, listing.stderr
    text = listing.stdout
    assert "inst_7  active" in text
    assert "shop.example  last run partial (full)" in text
    assert "customers" in text
    assert "synced to 2026-11-26T08:00:00.000Z" in text
    assert "orders[store-1]" in text
    assert "error x1: app down" in text
    assert "in progress: 1500 items in 3 pages" in text
    as_json = run(valid_env, "installations", "inst_7", "--json")
    assert json.loads(as_json.stdout)[0]["installation"]["installation_id"] == "inst_7"
    missing = run(valid_env, "installations", "ghost")
    assert missing.returncode == 1
    assert "no installation 'ghost'" in missing.stderr


async def test_installations_say_why_the_last_run_ended(valid_env: dict[str, str]) -> None:
    from sidecar.security.cipher import AesGcmCipher
    from sidecar.store import InstallationUpsert
    from sidecar.store.sqlite import open_sqlite_store

    store = await open_sqlite_store(
        Path(valid_env["DATABASE_PATH"]), cipher=AesGcmCipher(bytes.fromhex(CREDENTIALS_KEY_HEX))
    )
    await store.installations.upsert(InstallationUpsert(installation_id="inst_8", status="active"))
    await store.runs.start("inst_8", "full", owner="host:4242:killed")
    await store.runs.close_abandoned("interrupted: the process stopped")  # no lease held
    await store.aclose()

    listing = run(valid_env, "installations", "inst_8")

    assert listing.returncode == 0, listing.stderr
    assert "last run interrupted (full)" in listing.stdout
    assert (
        "interrupted: the process running it stopped (killed or crashed); the next run "
        "continues where it stopped"
    ) in listing.stdout
    as_json = json.loads(run(valid_env, "installations", "inst_8", "--json").stdout)
    assert as_json[0]["last_run"]["ended"].startswith("interrupted: the process running it")
