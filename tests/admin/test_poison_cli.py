"""An item set aside by a running sidecar, handled by an operator on the box: the CLI shows
it with its reason, refuses to replay it with the same reason, purges it — both audited."""

from __future__ import annotations

from pathlib import Path

import trio

from sidecar.testing.vendor_app import Dataset
from tests.admin.test_admin_cli import _admin
from tests.harness import sidecar_stack

REASON = "item 'c-3' cannot be encoded as JSON: $.amount is not a finite number (inf)"


def _customer(index: int) -> dict[str, object]:
    return {"id": f"c-{index}", "amount": float("inf") if index == 3 else index}


async def test_the_operator_sees_refuses_to_replay_and_purges_a_set_aside_item(
    tmp_path: Path,
) -> None:
    async with sidecar_stack(tmp_path) as stack:
        stack.vendor.set_dataset("customers", Dataset(count=8, item=_customer))
        stack.vendor.set_dataset("products", Dataset(count=0))
        stack.vendor.sources["orders"] = []
        await stack.activate()
        with trio.fail_after(60):
            while not stack.query("SELECT 1 FROM sync_runs WHERE status <> 'running'"):  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert sorted(i["id"] for i in stack.shopimind.items("customers")) == [
            f"c-{i}" for i in (0, 1, 2, 4, 5, 6, 7)
        ]

        code, dead, _ = await _admin(stack, "dead-letter", "inst_1")
        assert code == 0
        [item] = dead["items"]
        assert (item["entity"], item["reason"]) == ("customers", REASON)
        assert item["item"]["amount"] == "<unencodable: inf>"

        code, replayed, _ = await _admin(stack, "replay", "inst_1", "--ids", str(item["id"]))
        assert code == 0
        assert replayed["items"] == [{"id": item["id"], "outcome": "rejected", "reason": REASON}]
        code, purged, _ = await _admin(stack, "purge", "inst_1", "--ids", str(item["id"]))
        assert (code, purged["removed"]) == (0, 1)
        code, dead, _ = await _admin(stack, "dead-letter", "inst_1")
        assert dead["total"] == 0

        code, audit, _ = await _admin(stack, "audit")
        actions = [(e["action"], e["actor"].startswith("cli:")) for e in audit["items"]]
        assert actions[:2] == [("dead_letter.purge", True), ("dead_letter.replay", True)]
        assert audit["items"][1]["detail"]["rejected"] == 1
