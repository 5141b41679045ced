"""`shopimind-sidecar admin …` as a real process on the store of a running sidecar: the
same answers as the API, audited as `cli:<user>`, and the exit codes of the CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import trio

from sidecar.testing.vendor_app import Dataset
from tests.harness import ACCESS_TOKEN, Stack, sidecar_stack


async def _admin(stack: Stack, *args: str) -> tuple[int, Any, str]:
    """Run `python -m sidecar admin ARGS`; its exit code, its JSON answer, its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_SECRET")} | stack.environ
    done = await trio.run_process(
        [sys.executable, "-m", "sidecar", "admin", *args],
        env=env,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    out = done.stdout.decode()
    return done.returncode, json.loads(out) if out.strip() else None, done.stderr.decode()


async def test_admin_commands_on_the_local_store(tmp_path: Path) -> None:
    async with sidecar_stack(tmp_path) as stack:
        stack.vendor.set_dataset(
            "customers",
            Dataset(
                count=30, item=lambda i: {"id": i, "email": "broken" if i < 2 else f"c{i}@x.io"}
            ),
        )
        stack.vendor.set_dataset("products", Dataset(count=0))
        stack.vendor.sources["orders"] = []
        stack.shopimind.reject_when(
            lambda resource, item: None if "@" in str(item.get("email", "@")) else "invalid email"
        )
        await stack.activate()
        with trio.fail_after(60):
            while not stack.query("SELECT 1 FROM sync_runs WHERE status <> 'running'"):  # noqa: ASYNC110
                await trio.sleep(0.05)

        code, overview, _ = await _admin(stack, "overview")
        assert code == 0
        assert overview["installations"]["active"] == 1
        assert overview["dead_letter_items"] == 2
        code, listing, _ = await _admin(stack, "installations", "--limit", "999999")
        assert (code, listing["limit"], listing["items"][0]["installation_id"]) == (
            0,
            500,
            "inst_1",
        )
        code, state, _ = await _admin(stack, "state", "inst_1")
        assert code == 0
        assert ACCESS_TOKEN not in json.dumps(state)

        code, dead, _ = await _admin(stack, "dead-letter", "inst_1")
        assert [item["item"]["email"] for item in dead["items"]] == ["b***", "b***"]
        first = dead["items"][0]["id"]
        code, shown, _ = await _admin(stack, "reveal", "dead_letter", str(first))
        assert (code, shown["item"]["item"]["email"]) == (0, "broken")
        code, replayed, _ = await _admin(stack, "replay", "inst_1", "--ids", str(first))
        assert (code, replayed["rejected"]) == (0, 1)

        stack.shopimind.clear_rejections()
        code, replayed, _ = await _admin(stack, "replay", "inst_1")
        assert (code, replayed["accepted"], replayed["removed"]) == (0, 2, 2)
        code, reset, _ = await _admin(stack, "reset-cursor", "inst_1", "customers")
        assert (code, reset["reset"]) == (0, True)
        code, run, stderr = await _admin(stack, "sync", "inst_1")
        assert code == 0, stderr
        assert (run["kind"], run["status"]) == ("incremental", "ok")
        assert "customers:" in stderr or run["items"] >= 30  # progress line, or too fast for one
        code, provisioned, _ = await _admin(stack, "reprovision", "inst_1")
        assert (code, provisioned["errors"]) == (0, [])
        code, purged, _ = await _admin(stack, "purge", "inst_1", "--all")
        assert (code, purged["removed"]) == (0, 0)

        code, _, stderr = await _admin(stack, "installation", "ghost")
        assert code == 1
        assert "no installation 'ghost' (unknown_installation)" in stderr
        code, _, stderr = await _admin(stack, "reset-cursor", "inst_1", "unicorns")
        assert code == 2
        assert "(invalid_request)" in stderr
        code, _, stderr = await _admin(stack, "purge", "inst_1", "--ids", "1,x")
        assert code == 2
        assert "--ids" in stderr

        audit = stack.query("SELECT actor, action, detail_json FROM audit_log ORDER BY id")
        assert [row[1] for row in audit] == [
            "payload.reveal",
            "dead_letter.replay",
            "dead_letter.replay",
            "cursor.reset",
            "sync",
            "reprovision",
            "dead_letter.purge",
            "cursor.reset",  # refused (unicorns), and recorded as such
        ]
        assert json.loads(str(audit[-1][2])) == {"outcome": "invalid_request"}
        assert all(str(row[0]).startswith("cli:") for row in audit)
        assert "broken" not in json.dumps(audit)
        usage = await trio.run_process(
            [sys.executable, "-m", "sidecar", "admin", "--help"], capture_stdout=True
        )
        assert b"reveal" in usage.stdout
