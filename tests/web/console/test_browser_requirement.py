"""Without a browser, the browser tests skip with one reason — or fail, in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.console import browser


def test_a_missing_chromium_skips_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("SIDECAR_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="browser tests need chromium"):
        browser.require_browser()


def test_a_missing_chromium_fails_when_a_browser_is_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("SIDECAR_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="SIDECAR_REQUIRE_BROWSER=1"):
        browser.require_browser()
