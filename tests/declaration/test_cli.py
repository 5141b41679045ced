"""`shopimind-sidecar schema | manifest | check`, run as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.declaration.helpers import EXAMPLE
from tests.test_cli import run

BROKEN = 'slug = "Demo"\n\n[meta]\nname = "Demo"\nversion = "1.0"\n'


def test_schema_prints_the_json_schema_without_any_configuration() -> None:
    result = run({}, "schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "sync" in schema["properties"]


def test_manifest_needs_only_the_integration_file() -> None:
    result = run({"INTEGRATION_FILE": str(EXAMPLE)}, "manifest")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert (manifest["slug"], manifest["manifest_version"]) == ("acme-pos", 1)
    assert "fidélité" in result.stdout  # UTF-8 text, not \\u00e9 escapes


def test_manifest_reads_integration_toml_in_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "integration.toml").write_text(EXAMPLE.read_text(encoding="utf-8"), "utf-8")
    env = {k: v for k, v in os.environ.items() if k != "INTEGRATION_FILE"}
    result = subprocess.run(
        [sys.executable, "-m", "sidecar", "manifest"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["slug"] == "acme-pos"


def test_manifest_of_a_broken_declaration_prints_each_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "integration.toml"
    path.write_text(BROKEN, encoding="utf-8")
    result = run({"INTEGRATION_FILE": str(path)}, "manifest")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ")[1] for line in lines] == ["slug", "meta.version"]
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_manifest_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = run({"INTEGRATION_FILE": str(tmp_path / "absent.toml")}, "manifest")
    assert result.returncode == 2
    assert "absent.toml: no such file" in result.stderr


def test_check_validates_the_declaration_too(valid_env: dict[str, str]) -> None:
    Path(valid_env["INTEGRATION_FILE"]).write_text(BROKEN, encoding="utf-8")
    result = run(valid_env | {"PORT": "eighty"}, "check")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("PORT: ")
    assert lines[1:] == [
        f"{valid_env['INTEGRATION_FILE']}: slug: 'Demo' is not allowed here: use lower-case "
        "letters, digits, '_' and '-' only (e.g. 'acme-pos')",
        f"{valid_env['INTEGRATION_FILE']}: meta.version: '1.0' is not allowed here: use x.y.z "
        "with digits, e.g. '1.4.0'",
    ]


def test_check_reports_a_missing_declaration_once(valid_env: dict[str, str]) -> None:
    Path(valid_env["INTEGRATION_FILE"]).unlink()
    result = run(valid_env, "check")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"INTEGRATION_FILE: no such file: {valid_env['INTEGRATION_FILE']}"
    ]


def test_check_summarizes_a_valid_declaration(valid_env: dict[str, str]) -> None:
    result = run(valid_env | {"INTEGRATION_FILE": str(EXAMPLE)}, "check")
    assert result.returncode == 0, result.stderr
    assert "(acme-pos 1.4.0: 4 sync steps, 4 inbound actions)" in result.stdout
