"""ADMIN_READONLY_TOKEN on the admin API: it reads (payloads masked), acts on nothing."""

from __future__ import annotations

import json
from pathlib import Path

import trio
import trio.testing

from tests.web.console.client import READONLY_TOKEN, TOKEN, console_stack


async def test_the_read_only_token_reads_and_is_refused_any_action(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with console_stack(tmp_path) as console:
        await console.stack.activate()
        await console.stack.finished_runs(1)
        api = console.url.removesuffix("/ui")
        http = console.http
        seen = await http.get(
            api + "/installations/inst_1", headers={"x-admin-token": READONLY_TOKEN}
        )
        assert seen.status_code == 200, seen.text
        assert seen.json()["installation_id"] == "inst_1"
        for path in ("/installations/inst_1/sync", "/reveal/webhook/1"):
            await trio.sleep(1)
            refused = await http.post(
                api + path, headers={"authorization": f"Bearer {READONLY_TOKEN}"}
            )
            assert refused.status_code == 403, path
            assert refused.json()["error"] == "read_only"
        audit = console.audit()
        assert [(actor, action, target) for actor, action, target, _ in audit] == [
            ("admin-api:read-only", "admin.refused", "/admin/installations/inst_1/sync"),
            ("admin-api:read-only", "admin.refused", "/admin/reveal/webhook/1"),
        ]
        assert {json.loads(str(row[3]))["outcome"] for row in audit} == {"read_only"}
        await trio.sleep(1)
        acted = await http.post(
            api + "/installations/inst_1/sync", headers={"x-admin-token": TOKEN}
        )
        assert acted.status_code in (200, 202, 409), acted.text  # past the guard (409: busy)
