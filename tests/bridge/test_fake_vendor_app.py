"""The fake vendor app itself: lazy datasets, window filtering, paging, endless mode, guards."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sidecar.bridge import AppBridge, SyncPage
from sidecar.errors import BridgeError
from sidecar.security.signature import sign
from sidecar.testing.vendor_app import Dataset, FakeVendorApp
from tests.bridge.conftest import SINCE, UNTIL

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_dataset_bounds_follow_the_window_rule() -> None:
    dataset = Dataset(count=10, start=START, step=timedelta(minutes=1))
    # since < updated_at <= until
    assert dataset.bounds(START, START + timedelta(minutes=3)) == (1, 4)
    assert dataset.bounds(START - timedelta(seconds=1), START) == (0, 1)
    assert dataset.bounds(START + timedelta(hours=1), START + timedelta(hours=2)) == (10, 10)
    assert dataset.bounds(START + timedelta(minutes=5), START) == (6, 6)  # an empty window
    assert dataset.at(2) == {"id": "item-2", "updated_at": "2026-01-01T00:02:00.000Z"}


def test_dataset_spread_and_guards() -> None:
    dataset = Dataset.spread(4, since=SINCE, until=UNTIL)
    assert dataset.bounds(SINCE, UNTIL) == (0, 4)
    assert dataset.updated_at(3) == UNTIL
    with pytest.raises(ValueError, match="1 ms apart"):
        Dataset.spread(10, since=SINCE, until=SINCE + timedelta(microseconds=5))
    with pytest.raises(ValueError, match="never falls"):
        Dataset(count=1, step=timedelta(seconds=-1))


async def page(bridge: AppBridge, cursor: str | None, limit: int, **window: datetime) -> SyncPage:
    return await bridge.sync_page(
        "orders",
        installation_id="inst_1",
        settings={},
        source_key="",
        since=window.get("since", SINCE),
        until=window.get("until", UNTIL),
        cursor=cursor,
        limit=limit,
    )


async def test_200000_items_are_generated_page_by_page(
    bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    built: list[int] = []

    def item(index: int) -> dict[str, object]:
        built.append(index)
        return {"order_id": index}

    vendor.set_dataset("orders", Dataset(count=200_000, start=START, item=item))
    until = START + timedelta(days=30)
    first = await page(bridge, None, 100, since=SINCE - timedelta(days=1), until=until)
    assert len(first.items) == 100
    assert len(built) == 100  # nothing beyond the page asked for
    # Only the last 1,000 seconds' worth of a 200,000-item dataset: found without a scan.
    built.clear()
    late = await page(bridge, None, 5000, since=START + timedelta(seconds=198_999), until=until)
    assert [item["order_id"] for item in late.items] == list(range(199_000, 200_000))
    assert late.next is None
    assert len(built) == 1000
    # And the whole of it, page after page.
    built.clear()
    count, cursor, pages = 0, None, 0
    while True:
        result = await page(bridge, cursor, 20_000, since=SINCE - timedelta(days=1), until=until)
        count += len(result.items)
        pages += 1
        if result.next is None:
            break
        cursor = result.next
    assert (count, pages) == (200_000, 10)
    assert sorted(built) == list(range(200_000))


async def test_endless_pagination_always_has_a_next(
    bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.set_dataset("orders", Dataset.spread(5, since=SINCE, until=UNTIL))
    vendor.endless = True
    sizes: list[int] = []
    tokens: list[str] = []
    cursor = None
    for _ in range(6):
        result = await page(bridge, cursor, 2)
        assert result.next is not None
        sizes.append(len(result.items))
        tokens.append(result.next)
        cursor = result.next
    assert sizes == [2, 2, 1, 0, 0, 0]
    assert len(set(tokens)) == 6


async def test_sync_guards(bridge: AppBridge, vendor: FakeVendorApp) -> None:
    with pytest.raises(BridgeError, match="HTTP 404; the app said 'unknown_entity'"):
        await page(bridge, None, 10)
    vendor.set_dataset("orders", Dataset(count=1))
    with pytest.raises(BridgeError, match="HTTP 400; the app said 'bad_cursor'"):
        await page(bridge, "not-a-token", 10)


async def signed_post(
    http: httpx.AsyncClient, url: str, secret: str, body: bytes
) -> httpx.Response:
    timestamp = str(int(time.time()))
    headers = {
        "x-sidecar-timestamp": timestamp,
        "x-sidecar-signature": sign(secret, timestamp, body),
    }
    return await http.post(url, content=body, headers=headers)


async def test_unknown_routes_unsigned_and_non_json_requests(
    app_url: str, http: httpx.AsyncClient, vendor: FakeVendorApp
) -> None:
    unsigned = await http.post(app_url + "/test-connection", content=b"{}")
    assert unsigned.status_code == 401
    assert unsigned.json() == {"success": False, "error": "unauthorized"}
    assert vendor.signature_failures == ["/test-connection: missing_signature_headers"]
    assert not vendor.calls[0].signature_ok

    unknown = await signed_post(http, app_url + "/webhooks/orders", vendor.secret, b"{}")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "not_found"})
    not_json = await signed_post(http, app_url + "/provisioning", vendor.secret, b"nope")
    assert (not_json.status_code, not_json.json()) == (400, {"error": "invalid_json"})
    assert vendor.calls[-1].body is None
    assert len(vendor.signature_failures) == 1
