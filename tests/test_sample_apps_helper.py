"""Without php or node the sample-app tests skip with one line; under
SIDECAR_REQUIRE_SAMPLE_APPS=1 (CI) the missing program is a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sample_apps import need_program


def test_a_missing_program_skips_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("SIDECAR_REQUIRE_SAMPLE_APPS", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"php is not installed \(Debian: apt-get"):
        need_program("php")


def test_a_missing_program_fails_when_sample_apps_are_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("SIDECAR_REQUIRE_SAMPLE_APPS", "1")
    with pytest.raises(pytest.fail.Exception, match=r"node is not installed .*install nodejs"):
        need_program("node")
