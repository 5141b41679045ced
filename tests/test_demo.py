"""`demo` is `simulate` with the built-in Python sample app: every step works and ShopiMind
receives every sample item."""

from __future__ import annotations

import io
import re
from pathlib import Path

from sidecar.demo import run_demo
from sidecar.demo.sample_app import SAMPLE_COUNTS


async def test_the_demo_walks_the_whole_flow(tmp_path: Path) -> None:
    out = io.StringIO()
    assert await run_demo(out=out, workspace=tmp_path) == 0
    text = out.getvalue()
    received = dict(re.findall(r"^ {17}(\S+) +(\d+) items$", text, re.MULTILINE))
    assert received == {
        "customers": str(SAMPLE_COUNTS["customers"]),
        "orders": str(SAMPLE_COUNTS["orders"]),
        "custom_data:loyalty_cards": str(SAMPLE_COUNTS["loyalty_cards"]),
        "products": str(SAMPLE_COUNTS["products"]),
    }
    assert "4. inbound     your app → POST /inbound/sale → 202" in text
    assert "delivered: ShopiMind received POST events/trigger/acme_sale" in text
    assert (tmp_path / "sidecar.sqlite").exists()
