"""The whole sidecar: an activation triggers a full backfill that delivers every item of
the app to ShopiMind, then the scheduler keeps the installation incremental."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import trio
import trio.testing

from sidecar.testing.vendor_app import Dataset
from tests.harness import lifecycle, sidecar_stack, trio_wall_clock


async def test_activation_backfills_then_the_scheduler_keeps_it_incremental(
    mock_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with sidecar_stack(tmp_path, clock=trio_wall_clock) as stack:
        vendor, api = stack.vendor, stack.shopimind
        vendor.set_dataset("customers", Dataset(count=1_200))
        vendor.sources["orders"] = ["store-1", "store-2"]
        vendor.set_dataset("orders", Dataset(count=300), source_key="store-1")
        vendor.set_dataset("orders", Dataset(count=200), source_key="store-2")
        vendor.set_dataset("products", Dataset(count=150))
        assert (await stack.webhook(lifecycle("installed"))).json() == {"success": True}
        assert (await stack.webhook(lifecycle("activated"))).json() == {"success": True}

        assert await stack.finished_runs(1) == [("full", "ok")]
        assert api.count("customers") == 1_200
        assert api.count("orders") == 500
        assert api.count("products") == 150
        assert len({item["id_data_source"] for item in api.items("products")}) == 1
        assert vendor.calls_to("/sync/loyalty_cards") == []  # its checkbox is off
        ready = await stack.http.get(stack.url + "/ready")
        assert (ready.status_code, ready.json()) == (200, {"ready": True})
        health = (await stack.http.get(stack.url + "/health")).json()
        assert health["installations"][0]["last_run_status"] == "ok"

        # New rows in the app; the next scheduled run (15 minutes on) picks them up alone.
        later = trio_wall_clock() + timedelta(seconds=30)
        vendor.set_dataset("customers", Dataset(count=5, start=later))
        await trio.sleep(16 * 60)
        runs = await stack.finished_runs(2)
        assert runs[1] == ("incremental", "ok")
        assert api.count("customers") == 1_205
        assert api.count("orders") == 500  # nothing new: nothing pushed twice
