"""`admin overview` on the CLI and `GET /admin/overview`: one view, one shape."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.admin.test_admin_api import admin_stack
from tests.admin.test_admin_cli import _admin


async def test_cli_and_api_overviews_have_the_same_keys(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with admin_stack(tmp_path) as admin:
        await admin.stack.activate()
        await admin.stack.finished_runs(1)
        api = await admin.get("/admin/overview")
        code, cli, stderr = await _admin(admin.stack, "overview")
    assert code == 0, stderr
    api.pop("success")
    assert sorted(cli) == sorted(api)
    assert cli["installations"] == api["installations"]
    assert (cli["ready"], cli["sync_workers"], cli["app"]) == (None, None, None)
    assert api["sync_workers"]["total"] == 2
