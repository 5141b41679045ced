"""Poison isolation in sync: an item of the app that can never be pushed is a per-item
rejection — counted, dead-lettered with the app's id and the reason, judged by the step's
`tolerate_rejects` — never a transport failure that holds the window forever."""

from __future__ import annotations

import json

import pytest

from sidecar.declaration.model import (
    CustomDataSpec,
    CustomFieldSpec,
    Provisioning,
    ProvisioningPlan,
    TolerateRejects,
)
from sidecar.testing.vendor_app import Dataset
from tests.sync.conftest import INSTALLATION, SyncEnv, step

COUNT = 5000
POISON = 2500
REASON = "item 'item-2500' cannot be encoded as JSON: $.amount is not a finite number (inf)"


def _item(index: int) -> dict[str, object]:
    # The app's JSON encoder writes infinity as `Infinity`, which Python's parser reads back.
    return {"id": f"item-{index}", "amount": float("inf") if index == POISON else index}


@pytest.mark.parametrize(
    ("tolerate", "advances"), [(True, True), (False, False)], ids=["tolerated", "refused"]
)
async def test_one_bad_item_in_a_5000_item_backfill(
    env: SyncEnv, tolerate: TolerateRejects, advances: bool
) -> None:
    env.app.set_dataset("customers", Dataset(count=COUNT, item=_item))
    await env.activate()
    engine = env.engine(step(page_limit=500, tolerate_rejects=tolerate))

    report = await engine.sync(INSTALLATION)

    (cursor,) = report.cursors
    assert (cursor.items, cursor.pages, cursor.sent, cursor.rejected) == (COUNT, 10, COUNT - 1, 1)
    pushed = env.pushed_ids("customers")
    assert len(pushed) == COUNT - 1
    assert f"item-{POISON}" not in pushed
    (dead,) = await env.store.dead_letter.list(installation_id=INSTALLATION)
    assert dead.reason == REASON
    assert dead.run_id == report.run_id
    assert json.loads(dead.item_json)["id"] == f"item-{POISON}"
    if advances:
        assert report.status == "ok"
        assert await env.cursor_value("customers") == "2026-11-26T09:00:00.000Z"
    else:
        assert report.status == "partial"
        assert report.errors == [
            "customers: 1 item(s) rejected (cursor held; set tolerate_rejects to advance)"
        ]
        assert await env.cursor_value("customers") is None
        stored = await env.store.cursors.get(INSTALLATION, "customers")
        assert stored is not None
        assert stored.last_status == "error"


async def test_a_record_lacking_a_required_field_or_of_the_wrong_type_is_rejected_unsent(
    env: SyncEnv,
) -> None:
    definition = env.api.add_definition(
        "loyalty_cards",
        status="active",
        fields=[{"name": "id", "type": "text"}, {"name": "points", "type": "number"}],
    )

    def card(index: int) -> dict[str, object]:
        points: object = {0: None, 1: "many"}.get(index, index * 10)
        return {"id": f"card-{index}", "points": points}

    env.app.set_dataset("cards", Dataset(count=5, item=card))
    await env.activate(def_ids={"loyalty_cards": definition})
    spec = CustomDataSpec(
        name="loyalty_cards",
        fields=(
            CustomFieldSpec(name="id", type="text", required=True),
            CustomFieldSpec(name="points", type="number", required=True),
        ),
    )
    engine = env.engine(
        step("cards", target="custom_data:loyalty_cards", tolerate_rejects=True),
        provisioning=Provisioning(plan=ProvisioningPlan(custom_data=(spec,))),
    )

    report = await engine.sync(INSTALLATION)

    assert report.status == "ok"
    assert [r["id"] for r in env.api.records(int(str(definition)))] == [
        "card-2",
        "card-3",
        "card-4",
    ]
    reasons = sorted(d.reason for d in await env.store.dead_letter.list())
    assert reasons == [
        "item 'card-0': field 'points' is required",
        "item 'card-1': field 'points' must be a number",
    ]
    # Refused before any request: ShopiMind never saw them.
    sent = [json.loads(r.body) for r in env.api.requests_to(f"custom-data-records/{definition}")]
    assert all(item["id"] not in ("card-0", "card-1") for chunk in sent for item in chunk)
