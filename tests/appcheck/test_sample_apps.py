"""app-check against the three sample apps, each a real server on loopback: the Python
one (in this process), the PHP one and the Node one (their own processes)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import trio

from sidecar.appcheck import AppCheckTarget, Report, run_app_check
from sidecar.declaration import load_declaration
from sidecar.demo.sample_app import sample_app as python_sample_app
from sidecar.testing.server import running
from tests.conftest import APP_SECRET
from tests.harness import EXAMPLE
from tests.sample_apps import LANGUAGES, PREFIX, Language, sample_app


def _assert_all_passed(report: Report) -> None:
    failed = [(c.name, c.problems) for c in report.checks if c.status != "passed"]
    assert failed == []
    names = {check.name for check in report.checks}
    # The contract's every part was checked, not just reached.
    for expected in (
        "signature: an unsigned call is refused with 401",
        "signature: a call signed with another secret is refused with 401",
        "signature: a call with a 10-minute-old timestamp is refused with 401",
        "/test-connection answers {ok, error?}",
        "/remote-data/stores answers {data: [{value, label}]}",
        "/sources/orders lists valid source keys",
        "/sync/orders [store-paris]: items carry what `orders` requires",
        "/sync/customers: ids are unique in the window",
        "/sync/products: items respect since/until",
        "/sync/loyalty_cards: replaying a `next` token gives the same page",
        "/sync/customers: the pagination ends",
        "/lifecycle/activated accepts the event, and the same event again",
        "the health path answers 2xx",
        "/sync/orders: an unsigned call is refused with 401",
    ):
        assert expected in names


async def test_app_check_passes_against_the_python_sample_app() -> None:
    app = python_sample_app(APP_SECRET)
    async with running(app) as url:
        target = AppCheckTarget(base_url=url + app.prefix, secret=APP_SECRET, health_path="/health")
        report = await run_app_check(target, load_declaration(EXAMPLE))
    _assert_all_passed(report)
    assert app.signature_failures == [
        "/test-connection: missing_signature_headers",
        "/test-connection: signature_mismatch",
        "/test-connection: timestamp_out_of_tolerance",
        "/test-connection: timestamp_out_of_tolerance",
        *(
            f"/sync/{entity}: missing_signature_headers"
            for entity in ("customers", "orders", "loyalty_cards", "products")
        ),
    ]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_app_check_passes_against_the_sample_app(language: Language, tmp_path: Path) -> None:
    async with sample_app(language, secret=APP_SECRET, state_dir=tmp_path) as url:
        target = AppCheckTarget(base_url=url + PREFIX, secret=APP_SECRET, health_path="/health")
        report = await run_app_check(target, load_declaration(EXAMPLE))
    _assert_all_passed(report)


async def test_the_command_reports_in_json_and_exits_0(tmp_path: Path) -> None:
    async with sample_app("php", secret=APP_SECRET, state_dir=tmp_path) as url:
        result = await trio.run_process(
            [sys.executable, "-m", "sidecar", "app-check", "--json"],
            env={
                "PATH": os.environ.get("PATH", ""),
                "APP_BASE_URL": url + PREFIX,
                "APP_SECRET": APP_SECRET,
                "APP_HEALTH_PATH": "/health",
                "INTEGRATION_FILE": str(EXAMPLE),
            },
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 0, result.stdout.decode()
    report = json.loads(result.stdout)
    assert (report["ok"], report["failed"], report["skipped"]) == (True, 0, 0)
    assert report["passed"] == len(report["checks"]) > 40
    assert result.stderr == b""  # no log lines, no progress when stderr is not a terminal
