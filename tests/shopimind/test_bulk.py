"""Bulk pushes: chunking, aggregation, transport failures versus rejections, delete."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from sidecar.outbound import RetryPolicy
from sidecar.shopimind.bulk import BulkResult, map_rejected_items, read_chunk_answer
from sidecar.shopimind.client import ShopimindApi, ShopimindClient
from sidecar.shopimind.resources import chunk_size_for, custom_records_path
from sidecar.store.records import RejectedItemInput
from sidecar.testing.shopimind_api import FakeShopimind


def customers(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id_customer": f"c{i}", "email": f"c{i}@shop.test"} for i in range(start, start + count)
    ]


def _bodies(fake: FakeShopimind, path: str) -> list[Any]:
    return [r.json for r in fake.requests_to(path)]


async def test_items_are_sent_in_chunks_of_the_resource_size(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    result = await api.push("customers", customers(120))
    assert result == BulkResult(sent=120)
    assert [len(body) for body in _bodies(fake, "customers")] == [50, 50, 20]
    assert fake.count("customers") == 120
    assert fake.items("customers")[119] == {"id_customer": "c119", "email": "c119@shop.test"}


async def test_nothing_to_push_sends_nothing(api: ShopimindApi, fake: FakeShopimind) -> None:
    assert await api.push("orders", []) == BulkResult()
    assert not fake.requests


async def test_an_explicit_chunk_size_and_put_updates(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    result = await api.push("products-categories", customers(10), method="PUT", chunk_size=4)
    assert result.sent == 10
    assert [len(r.json) for r in fake.requests_to("products-categories", method="PUT")] == [4, 4, 2]
    assert fake.count("products-categories", method="PUT") == 10
    assert fake.count("products-categories") == 0


async def test_custom_records_go_twenty_at_a_time(api: ShopimindApi, fake: FakeShopimind) -> None:
    ident = fake.add_definition("Visits", fields=["shop"])
    result = await api.push_custom_records(ident, [{"shop": f"s{i}"} for i in range(45)])
    assert result.sent == 45
    assert [len(body) for body in _bodies(fake, f"custom-data-records/{ident}")] == [20, 20, 5]
    assert len(fake.records(ident)) == 45


def test_chunk_sizes_of_parametric_paths() -> None:
    assert chunk_size_for("customers/c-9/addresses") == 50
    assert chunk_size_for("/products/p1/variations/") == 50
    assert chunk_size_for("customers-groups") == 100
    assert chunk_size_for(custom_records_path(7)) == 20
    assert custom_records_path("a/b") == "custom-data-records/a%2Fb"
    assert chunk_size_for("carts") is None


async def test_an_unknown_resource_needs_a_chunk_size(api: ShopimindApi) -> None:
    with pytest.raises(ValueError, match="not a known bulk resource"):
        await api.push("carts", customers(1))
    with pytest.raises(ValueError, match="at least 1"):
        await api.push("customers", customers(1), chunk_size=0)


async def test_each_chunk_carries_its_own_idempotency_key(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    await api.push("orders", customers(101), idempotency_key="inst_42:orders:page-3")
    keys = [r.headers["idempotency-key"] for r in fake.requests_to("orders")]
    assert keys == ["inst_42:orders:page-3:0", "inst_42:orders:page-3:1", "inst_42:orders:page-3:2"]


async def test_without_a_key_no_idempotency_header_is_sent(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    await api.push("orders", customers(2))
    assert "idempotency-key" not in fake.requests[0].headers


async def test_a_failed_chunk_stops_the_push_and_is_a_transport_failure(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(1, status=500, path="customers", after=1)  # the second chunk
    result = await api.push("customers", customers(160))
    assert result.transport_failed
    assert (result.sent, result.rejected, result.failed) == (50, 0, 110)
    (error,) = result.errors
    assert error.startswith("chunk 1 (50 items): ShopiMind POST /v1/customers failed: HTTP 500")
    assert len(fake.requests_to("customers")) == 2  # chunks 3 and 4 were never sent
    assert fake.count("customers") == 50


async def test_a_failed_chunk_with_a_key_is_retried_and_succeeds(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(2, status=503, path="customers", after=1)
    result = await api.push("customers", customers(100), idempotency_key="k")
    assert result == BulkResult(sent=100)
    assert [r.headers["idempotency-key"] for r in fake.requests] == ["k:0", "k:1", "k:1", "k:1"]


async def test_rejections_are_counted_and_mapped_not_transport_failures(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.reject_when(
        lambda resource, item: None if "@" in str(item.get("email")) else "invalid email"
    )
    items = customers(60)
    for index in (3, 51, 59):
        items[index]["email"] = f"broken-{index}"
    result = await api.push("customers", items)
    assert not result.transport_failed
    assert (result.sent, result.rejected, result.failed) == (57, 3, 0)
    assert result.rejected_items == tuple(
        RejectedItemInput(item=items[i], reason="invalid email") for i in (3, 51, 59)
    )
    assert fake.count("customers") == 57


async def test_a_streaming_push_has_one_chunk_in_flight(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.slow_next(1, seconds=5, path="customers")
    await api.push("customers", customers(100))
    first, second = fake.requests_to("customers")
    assert second.at - first.at >= 5


async def test_delete_many_posts_the_ids_under_the_delete_key(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    result = await api.delete_many("customers", [f"c{i}" for i in range(70)], idempotency_key="d")
    assert result.sent == 70
    bodies = [r.json for r in fake.requests_to("customers/bulk-delete")]
    assert [len(body["customer_ids"]) for body in bodies] == [50, 20]
    assert fake.deleted["customers"][:2] == ["c0", "c1"]
    with pytest.raises(ValueError, match="no bulk delete"):
        await api.delete_many("products/images/bulk", [1])


async def test_a_failing_delete_is_a_transport_failure(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(1, status=400, path="orders")
    result = await api.delete_many("orders", [1, 2, 3])
    assert result.transport_failed
    assert result.failed == 3


def test_results_add_up() -> None:
    one = BulkResult(sent=3, rejected=1, rejected_items=(RejectedItemInput(item=1, reason="r"),))
    two = BulkResult(sent=2, failed=4, errors=("boom",))
    total = one + two
    assert (total.sent, total.rejected, total.failed) == (5, 1, 4)
    assert total.errors == ("boom",)
    assert len(total.rejected_items) == 1
    assert total.transport_failed
    assert not one.transport_failed


# --- reading answers whose shape ShopiMind does not document -------------------------------

CHUNK: list[dict[str, object]] = [
    {"id_customer": "c1", "email": "a@x.test"},
    {"id_customer": "c2", "email": "nope"},
]


@pytest.mark.parametrize(
    ("entry", "item", "reason"),
    [
        ({"index": 1, "reason": "invalid email"}, CHUNK[1], "invalid email"),
        (
            {"item": {"id_customer": "c2"}, "message": ["bad", "worse"]},
            {"id_customer": "c2"},
            "bad; worse",
        ),
        ({"id_customer": "c2", "error": "invalid email"}, CHUNK[1], "invalid email"),
        ({"email": "nope", "errors": {"email": "invalid"}}, CHUNK[1], '{"email": "invalid"}'),
        (
            {"id_customer": "c9", "error": "unknown"},
            {"id_customer": "c9", "error": "unknown"},
            "unknown",
        ),
        ({"index": 7}, {"index": 7}, "rejected by ShopiMind (no reason given)"),
        ("c2", "c2", "rejected by ShopiMind (no reason given)"),
    ],
)
def test_rejected_entries_map_back_to_the_sent_item(
    entry: object, item: object, reason: str
) -> None:
    (mapped,) = map_rejected_items([entry], CHUNK)
    assert mapped == RejectedItemInput(item=item, reason=reason)


def test_counts_are_read_at_the_top_or_under_data() -> None:
    top = read_chunk_answer({"sent_count": 1, "rejected_count": 1, "rejected_items": []}, CHUNK)
    assert (top.sent, top.rejected, top.failed) == (1, 1, 0)
    nested = read_chunk_answer(
        {"statusCode": 200, "data": {"sent_count": "2", "rejected_count": 0}}, CHUNK
    )
    assert (nested.sent, nested.rejected) == (2, 0)
    inferred = read_chunk_answer({"rejected_items": [{"index": 0}]}, CHUNK)
    assert (inferred.sent, inferred.rejected) == (1, 1)
    accepted = read_chunk_answer({"statusCode": 201, "data": None}, CHUNK)
    assert (accepted.sent, accepted.rejected) == (2, 0)
    assert read_chunk_answer(None, CHUNK).sent == 2


async def test_a_2xx_reporting_failed_items_is_a_transport_failure() -> None:
    answers = iter(
        [
            {"sent_count": 50, "rejected_count": 0, "rejected_items": []},
            {
                "sent_count": 45,
                "rejected_count": 1,
                "failed_count": 4,
                "rejected_items": [{"index": 0}],
            },
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(next(answers)).encode())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = ShopimindClient(
            base_url="https://core.test", http=http, policy=RetryPolicy(max_retries=0)
        ).api("int_x")
        result = await api.push("customers", customers(130))
    assert result.transport_failed
    assert (result.sent, result.rejected, result.failed) == (95, 1, 4 + 30)
    assert result.errors == ("ShopiMind POST /v1/customers: chunk 1 reported 4 item(s) failed",)


def test_the_fake_can_keep_only_a_sample_of_what_it_received() -> None:
    sampled = FakeShopimind(keep_items=5)
    sampled._bulk("POST", "customers", customers(50))
    assert sampled.count("customers") == 50
    assert len(sampled.items("customers")) == 5


async def test_chunks_go_out_concurrently_in_order_at_most_concurrency_at_once(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.slow_next(10, seconds=1, path="customers")  # every chunk takes one second
    began = trio.current_time()
    result = await api.push("customers", customers(500), idempotency_key="k", concurrency=4)
    assert result == BulkResult(sent=500)
    assert trio.current_time() - began == pytest.approx(3)  # 4 + 4 + 2 chunks, not 10 in a row
    waves: dict[int, set[str]] = {}
    for request in fake.requests_to("customers"):
        waves.setdefault(round(request.at - began), set()).add(request.headers["idempotency-key"])
    assert waves == {
        0: {"k:0", "k:1", "k:2", "k:3"},
        1: {"k:4", "k:5", "k:6", "k:7"},
        2: {"k:8", "k:9"},
    }
    assert fake.count("customers") == 500


async def test_a_failed_chunk_stops_a_concurrent_push_from_starting_more(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(1, status=500, path="customers", after=4)  # the fifth chunk to arrive
    result = await api.push("customers", customers(100), chunk_size=10, concurrency=3)
    assert result.transport_failed
    (error,) = result.errors
    assert re.match(
        r"chunk [3-6] \(10 items\): ShopiMind POST /v1/customers failed: HTTP 500", error
    )
    sent = len(fake.requests_to("customers"))
    # Five chunks went out, and at most the two others in flight with the failed one.
    assert 5 <= sent <= 7
    assert result.sent == fake.count("customers") == (sent - 1) * 10
    assert result.failed == 100 - result.sent


async def test_a_concurrency_below_one_is_refused(api: ShopimindApi) -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1; got 0"):
        await api.push("customers", customers(1), concurrency=0)
