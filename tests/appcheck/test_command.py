"""The `app-check` command: configuration problems (exit 2), an app that is not there (one
clear failure, exit 1), and progress only on a terminal."""

from __future__ import annotations

import argparse
import io
import json
import socket
from pathlib import Path

import pytest

from sidecar.appcheck.command import run_app_check_command
from sidecar.cli import main
from tests.harness import EXAMPLE


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there any more


def _args(**options: object) -> argparse.Namespace:
    values: dict[str, object] = {"json": False, "settings": None, "page_limit": None}
    return argparse.Namespace(**{**values, "max_pages": None, **options})


def test_missing_and_bad_settings_exit_2_one_line_each(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("APP_BASE_URL", "APP_SECRET", "APP_SECRET_FILE", "APP_HEALTH_PATH"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "settings.json").write_text("[1, 2]")
    code = main(["app-check", "--settings", str(tmp_path / "settings.json"), "--page-limit", "0"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "APP_BASE_URL: is required: the base URL of the app to check",
        "APP_SECRET: is required (or APP_SECRET_FILE): the secret the app checks",
        f"--settings: {tmp_path / 'settings.json'} must hold a JSON object of settings",
        "--page-limit: must be at least 1",
    ]


def test_an_app_that_is_not_there_is_one_clear_failure() -> None:
    out = io.StringIO()
    environ = {
        "APP_BASE_URL": f"http://127.0.0.1:{_closed_port()}/shopimind",
        "APP_SECRET": "appsec_x",
        "INTEGRATION_FILE": str(EXAMPLE),
    }
    code = run_app_check_command(_args(json=True), environ=environ, out=out, err=io.StringIO())
    assert code == 1
    report = json.loads(out.getvalue())
    assert report["ok"] is False
    failed = [check for check in report["checks"] if check["status"] == "failed"]
    assert [check["problems"][0] for check in failed] == [
        "no answer: is the app running at APP_BASE_URL?"
    ]
    assert failed[0]["request"]["signing"] == "unsigned"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_only() -> None:
    environ = {
        "APP_BASE_URL": f"http://127.0.0.1:{_closed_port()}/shopimind",
        "APP_SECRET": "appsec_x",
        "INTEGRATION_FILE": str(EXAMPLE),
    }
    terminal = _Terminal()
    run_app_check_command(_args(), environ=environ, out=io.StringIO(), err=terminal)
    assert "checking signature: an unsigned call is refused with 401…" in terminal.getvalue()
    pipe = io.StringIO()
    run_app_check_command(_args(), environ=environ, out=io.StringIO(), err=pipe)
    assert pipe.getvalue() == ""
