"""`shopimind-sidecar sync` as an operator runs it: progress for every step on stderr,
the log kept to warnings unless `-v`, the summary on stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import trio

from sidecar.testing.server import running
from sidecar.testing.shopimind_api import FakeShopimind
from sidecar.testing.vendor_app import Dataset, FakeVendorApp
from tests.conftest import APP_SECRET
from tests.harness import process_env
from tests.sync.test_crash_resume import TOKEN, _prepare

DECLARATION = """
slug = "cli-test"
[meta]
name = "CLI test"
version = "1.0.0"
[[sync]]
entity = "customers"
target = "customers"
page_limit = 100
[[sync]]
entity = "orders"
target = "orders"
page_limit = 100
"""


def _is_log_line(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


@pytest.mark.parametrize("verbose", [False, True])
async def test_sync_shows_every_step_and_keeps_the_log_quiet(tmp_path: Path, verbose: bool) -> None:
    api = FakeShopimind(tokens={TOKEN})
    vendor = FakeVendorApp(APP_SECRET)
    vendor.set_dataset("customers", Dataset(count=250))
    vendor.set_dataset("orders", Dataset(count=150))
    declaration = tmp_path / "integration.toml"
    declaration.write_text(DECLARATION, encoding="utf-8")
    database = tmp_path / "sidecar.sqlite"
    await _prepare(database)
    async with running(api) as api_url, running(vendor) as app_url:
        env = process_env(
            database=database,
            api_url=api_url,
            app_url=app_url + vendor.prefix,
            declaration=declaration,
            LOG_LEVEL="info",
        )
        flags = ["-v"] if verbose else []
        done = await trio.run_process(
            [sys.executable, "-m", "sidecar", "sync", "inst_1", *flags],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    err = done.stderr.decode().splitlines()
    progress = [line for line in err if not _is_log_line(line)]
    assert [line.split(":")[0] for line in progress][:1] == ["customers"]
    assert {line.split(":")[0] for line in progress} == {"customers", "orders"}
    logs = [line for line in err if _is_log_line(line)]
    if verbose:
        assert any(json.loads(line)["level"] == "info" for line in logs)
    else:
        assert logs == []
    out = done.stdout.decode()
    assert out.startswith("run 1: ok (incremental), 400 items")
    assert "customers" in out
    assert "orders" in out
    assert api.count("customers") == 250
    assert api.count("orders") == 150
