"""Each bridge call on the wire: path, signed compact JSON body, and its checked answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
import trio.testing

from sidecar.bridge import (
    AppBridge,
    ConnectionCheck,
    ExternalAccount,
    LifecycleAnswer,
    RemoteOption,
    SyncPage,
)
from sidecar.errors import BridgeError
from sidecar.security.signature import verify
from sidecar.testing.server import running
from sidecar.testing.vendor_app import Dataset, FakeVendorApp
from tests.bridge.conftest import SECRET, SETTINGS, SINCE, UNTIL


def compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


async def test_test_connection_signed_compact_json(
    bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    assert await bridge.test_connection(SETTINGS) == ConnectionCheck(ok=True, error=None)
    (call,) = vendor.calls
    assert call.path == "/test-connection"
    assert call.raw_path == b"/shopimind/test-connection"
    assert call.content_type == "application/json"
    assert call.raw_body == compact({"settings": SETTINGS})
    assert call.signature_ok
    assert vendor.signature_failures == []
    # What a vendor checks: the right secret passes, any other fails.
    assert verify(
        secrets=[SECRET], timestamp=call.timestamp, signature=call.signature, body=call.raw_body
    )
    wrong = verify(
        secrets=["not-the-secret"],
        timestamp=call.timestamp,
        signature=call.signature,
        body=call.raw_body,
    )
    assert wrong.reason == "signature_mismatch"


async def test_test_connection_derived_from_settings(
    bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.connection = FakeVendorApp.ok_when("api_key", "good", error="bad key")
    assert await bridge.test_connection({"api_key": "good"}) == ConnectionCheck(ok=True)
    assert await bridge.test_connection({"api_key": "nope"}) == ConnectionCheck(
        ok=False, error="bad key"
    )
    vendor.connection = {"ok": False}
    assert await bridge.test_connection({}) == ConnectionCheck(ok=False, error=None)


async def test_timestamp_comes_from_the_clock_and_utf8_is_sent_as_is(
    mock_clock: trio.testing.MockClock, http: httpx.AsyncClient
) -> None:
    moment = datetime(2026, 11, 26, 9, 30, 15, 900_000, tzinfo=UTC)
    vendor = FakeVendorApp(SECRET, now=moment.timestamp)
    async with running(vendor) as url:
        bridge = AppBridge(
            base_url=url + vendor.prefix + "/", secret=SECRET, http=http, clock=lambda: moment
        )
        await bridge.test_connection({"shop": "Zoë ✓"})
    (call,) = vendor.calls
    assert call.timestamp == str(int(moment.timestamp()))
    assert call.raw_body == '{"settings":{"shop":"Zoë ✓"}}'.encode()
    assert call.path == "/test-connection"  # the trailing slash of the base URL is dropped
    assert vendor.signature_failures == []


async def test_remote_data(bridge: AppBridge, vendor: FakeVendorApp) -> None:
    vendor.remote_data["stores"] = [
        {"value": "1", "label": "Paris"},
        {"value": 2, "label": "Lyon", "extra": "ignored"},
    ]
    assert await bridge.remote_data("stores", SETTINGS) == (
        RemoteOption(value="1", label="Paris"),
        RemoteOption(value="2", label="Lyon"),
    )
    (call,) = vendor.calls
    assert call.path == "/remote-data/stores"
    assert call.body == {"settings": SETTINGS}


async def test_path_segments_are_quoted(bridge: AppBridge, vendor: FakeVendorApp) -> None:
    vendor.remote_data["shop list/é?x"] = []
    assert await bridge.remote_data("shop list/é?x", {}) == ()
    (call,) = vendor.calls
    assert call.raw_path == b"/shopimind/remote-data/shop%20list%2F%C3%A9%3Fx"
    assert call.path == "/remote-data/shop list/é?x"


@pytest.mark.parametrize("name", ["", ".", ".."])
async def test_a_path_segment_must_be_a_name(bridge: AppBridge, name: str) -> None:
    with pytest.raises(ValueError, match="must be a name"):
        await bridge.remote_data(name, {})
    with pytest.raises(ValueError, match="must be a name"):
        await bridge.sources(name, installation_id="inst_1", settings={})


async def test_unknown_remote_resource_is_a_404_not_retried(
    bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    with pytest.raises(BridgeError, match="app answered /remote-data/nope with HTTP 404") as exc:
        await bridge.remote_data("nope", {})
    assert exc.value.status == 404
    assert "unknown_resource" in str(exc.value)
    assert len(vendor.calls) == 1


async def test_lifecycle_body_and_external_account(
    bridge: AppBridge, vendor: FakeVendorApp
) -> None:
    vendor.lifecycle_answer = {"ok": True, "external_account": {"id": 42, "name": "Acme"}}
    answer = await bridge.lifecycle(
        "activated",
        installation_id="inst_1",
        settings=SETTINGS,
        shop_domain="shop.example",
        shop_name="Shop",
        inbound_secret="insec_" + "ab" * 24,
    )
    assert answer == LifecycleAnswer(
        ok=True, error=None, external_account=ExternalAccount(id="42", name="Acme")
    )
    (call,) = vendor.calls
    assert call.path == "/lifecycle/activated"
    assert call.body == {
        "installation_id": "inst_1",
        "event": "activated",
        "settings": SETTINGS,
        "shop_domain": "shop.example",
        "shop_name": "Shop",
        "inbound_secret": "insec_" + "ab" * 24,
        "provisioning_ids": None,
    }
    (recorded,) = vendor.lifecycle_calls
    assert recorded.event == recorded.body_event == "activated"
    assert recorded.inbound_secret == "insec_" + "ab" * 24


async def test_lifecycle_refusal_and_nulls(bridge: AppBridge, vendor: FakeVendorApp) -> None:
    vendor.lifecycle_answer = {"ok": False, "error": "account suspended"}
    answer = await bridge.lifecycle(
        "deactivated",
        installation_id="inst_1",
        settings={},
        shop_domain=None,
        shop_name=None,
        inbound_secret=None,
    )
    assert answer == LifecycleAnswer(ok=False, error="account suspended")
    (recorded,) = vendor.lifecycle_calls
    assert (recorded.shop_domain, recorded.shop_name, recorded.inbound_secret) == (None,) * 3
    vendor.lifecycle_answer = {"ok": True, "external_account": {"id": "acc-1"}}
    answer = await bridge.lifecycle(
        "installed",
        installation_id="inst_1",
        settings={},
        shop_domain=None,
        shop_name=None,
        inbound_secret=None,
    )
    assert answer.external_account == ExternalAccount(id="acc-1", name=None)


async def test_provisioning(bridge: AppBridge, vendor: FakeVendorApp) -> None:
    plan = {"data_sources": [{"key": "store-1", "label": "Paris", "type": "store"}]}
    vendor.provisioning_answer = lambda body: {**plan, "for": body["installation_id"]}
    assert await bridge.provisioning("inst_1", SETTINGS) == {**plan, "for": "inst_1"}
    (call,) = vendor.calls
    assert call.path == "/provisioning"
    assert call.body == {"installation_id": "inst_1", "settings": SETTINGS}


async def test_sources(bridge: AppBridge, vendor: FakeVendorApp) -> None:
    vendor.sources["orders"] = ["store-1", "store-2"]
    assert await bridge.sources("orders", installation_id="inst_1", settings=SETTINGS) == (
        "store-1",
        "store-2",
    )
    (call,) = vendor.calls
    assert call.path == "/sources/orders"
    assert call.body == {"installation_id": "inst_1", "settings": SETTINGS}


async def test_sync_pages_through_a_window(bridge: AppBridge, vendor: FakeVendorApp) -> None:
    vendor.set_dataset("orders", Dataset.spread(5, since=SINCE, until=UNTIL))
    pages: list[SyncPage] = []
    cursor: str | None = None
    while True:
        page = await bridge.sync_page(
            "orders",
            installation_id="inst_1",
            settings=SETTINGS,
            source_key="",
            since=SINCE,
            until=UNTIL,
            cursor=cursor,
            limit=2,
        )
        pages.append(page)
        if page.next is None:
            break
        cursor = page.next
    assert [len(page.items) for page in pages] == [2, 2, 1]
    assert [item["id"] for page in pages for item in page.items] == [f"item-{i}" for i in range(5)]
    assert pages[-1].items[0]["updated_at"] == "2026-02-01T00:00:00.000Z"
    first, second = vendor.calls_to("/sync/orders")[:2]
    assert first.body == {
        "installation_id": "inst_1",
        "settings": SETTINGS,
        "source_key": "",
        "window": {"since": "2026-01-01T00:00:00.000Z", "until": "2026-02-01T00:00:00.000Z"},
        "cursor": None,
        "limit": 2,
    }
    assert isinstance(second.body, dict)
    assert second.body["cursor"] == pages[0].next


async def test_sync_per_source_key(bridge: AppBridge, vendor: FakeVendorApp) -> None:
    vendor.set_dataset(
        "orders",
        Dataset.spread(3, since=SINCE, until=UNTIL, item=lambda i: {"order_id": f"P{i}"}),
        source_key="paris",
    )
    vendor.set_dataset("orders", Dataset.spread(1, since=SINCE, until=UNTIL), source_key="lyon")

    async def first_page(source_key: str) -> SyncPage:
        return await bridge.sync_page(
            "orders",
            installation_id="inst_1",
            settings={},
            source_key=source_key,
            since=SINCE,
            until=UNTIL,
            cursor=None,
            limit=10,
        )

    paris = await first_page("paris")
    assert [item["order_id"] for item in paris.items] == ["P0", "P1", "P2"]
    assert paris.next is None
    assert len((await first_page("lyon")).items) == 1
    assert await first_page("unknown-store") == SyncPage(items=(), next=None)


async def test_sync_limit_must_be_positive(bridge: AppBridge) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await bridge.sync_page(
            "orders",
            installation_id="inst_1",
            settings={},
            source_key="",
            since=SINCE,
            until=UNTIL,
            cursor=None,
            limit=0,
        )


async def test_construction_refuses_a_bad_base_url_or_no_secret(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="absolute http"):
        AppBridge(base_url="127.0.0.1:8000/shopimind", secret=SECRET, http=http)
    with pytest.raises(ValueError, match="must not embed credentials"):
        AppBridge(base_url="http://user:pw@127.0.0.1:8000", secret=SECRET, http=http)
    with pytest.raises(ValueError, match="needs a secret"):
        AppBridge(base_url="http://127.0.0.1:8000", secret="", http=http)
    bridge = AppBridge(base_url="http://127.0.0.1:8000/app/", secret=SECRET, http=http)
    assert bridge.base_url == "http://127.0.0.1:8000/app"
    assert SECRET not in repr(bridge)
