"""The command line's rough edges, each run as a real subprocess as a user would."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.sqlite_file import database_path_problem
from tests.test_cli import run


def _demo(workspace: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_SECRET")}
    return subprocess.run(
        [sys.executable, "-m", "sidecar", "demo", "--workspace", str(workspace)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _received(stdout: str) -> list[list[str]]:
    """The lines of the backfill step that count what ShopiMind received."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("3. backfill"))
    return [line.split() for line in lines[start + 1 : start + 5]]


def test_demo_runs_twice_in_one_workspace(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr
    second = _demo(tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stderr == ""
    assert "done: ok" in second.stdout
    assert _received(second.stdout) == _received(first.stdout)
    assert "5. deactivate" in second.stdout
    with sqlite3.connect(tmp_path / "sidecar.sqlite") as db:
        kinds = [row[0] for row in db.execute("SELECT kind FROM sync_runs ORDER BY id")]
    assert kinds.count("full") == 2
    assert oct((tmp_path / "credentials-key").stat().st_mode & 0o777) == "0o600"


def test_demo_refuses_a_database_whose_secrets_it_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "sidecar.sqlite").write_bytes(b"")
    result = _demo(tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "without credentials-key" in result.stderr
    assert "Traceback" not in result.stderr


def test_backup_writes_a_checked_copy(valid_env: dict[str, str], tmp_path: Path) -> None:
    assert run(valid_env, "migrate").returncode == 0
    target = tmp_path / "copy.sqlite"
    result = run(valid_env, "backup", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{target}: ")
    assert "integrity ok" in result.stdout
    with sqlite3.connect(target) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    again = run(valid_env, "backup", str(target))
    assert again.returncode != 0
    assert "Traceback" not in again.stderr
    assert target.name in again.stderr


def test_a_database_folder_the_user_cannot_enter_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    path = locked / "data" / "sidecar.sqlite"

    def denied(self: Path) -> bool:
        raise PermissionError(13, "Permission denied", str(locked / "data"))

    # Root ignores permission bits, so the refusal the kernel gives other users is staged.
    monkeypatch.setattr(Path, "is_dir", denied)
    problem = database_path_problem(path)
    assert problem is not None
    assert str(path) in problem
    assert "Permission denied" in problem
    assert str(locked / "data") in problem


def test_credentials_directory_that_is_a_file(valid_env: dict[str, str], tmp_path: Path) -> None:
    a_file = tmp_path / "credentials"
    a_file.write_text("", encoding="utf-8")
    result = run(valid_env | {"CREDENTIALS_DIRECTORY": str(a_file)}, "check")
    assert result.returncode == 2
    assert f"CREDENTIALS_DIRECTORY: {a_file} is a file, not a folder" in result.stderr


@pytest.mark.parametrize("command", ["schema", "manifest", "--version"])
def test_a_reader_that_goes_away_is_not_an_error(valid_env: dict[str, str], command: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_SECRET")}
    with subprocess.Popen(
        [sys.executable, "-m", "sidecar", command],
        env=clean | valid_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as reader:
        assert reader.stdout is not None
        assert reader.stderr is not None
        reader.stdout.read(1)
        reader.stdout.close()  # `| head -c 1`
        errors = reader.stderr.read().decode()
        assert reader.wait(timeout=60) == 0
    assert errors == ""
