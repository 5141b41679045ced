"""The rules without HTTP: payload shapes, routes, keys, and which failures are permanent."""

from __future__ import annotations

import pytest

from sidecar.declaration.model import InboundAction
from sidecar.inbound.delivery import is_permanent
from sidecar.inbound.keys import (
    InvalidIdempotencyKeyError,
    dedup_key,
    upstream_idempotency_key,
)
from sidecar.inbound.shapes import (
    InvalidPayloadError,
    NotProvisionedError,
    Route,
    prepare,
    resolve_route,
)

SALE = InboundAction(name="sale", target="trigger_event:acme_sale")
MEMBER = InboundAction(name="member", target="contacts", mode="direct")
ORDER = InboundAction(name="order", target="orders")
CARD = InboundAction(name="card", target="custom_data:loyalty_cards")


def test_an_event_takes_any_object() -> None:
    assert prepare(SALE, {}).body == {}
    assert prepare(SALE, {"amount": 1, "nested": {"a": [1]}}).items == 1
    bad: object
    for bad in ([], "sale", 1, None):
        with pytest.raises(InvalidPayloadError, match="must be a JSON object"):
            prepare(SALE, bad)


@pytest.mark.parametrize(
    "contact", [{"email": "a@b.c"}, {"phone": "+33 6"}, {"email": "a@b", "x": 1}]
)
def test_a_contact_needs_an_email_or_a_phone(contact: dict[str, object]) -> None:
    assert prepare(MEMBER, contact).body == contact


@pytest.mark.parametrize(
    "contact",
    [{}, {"email": ""}, {"email": "nobody"}, {"email": 7}, {"phone": " "}, {"name": "Ada"}, []],
)
def test_a_contact_without_a_usable_address_is_refused(contact: object) -> None:
    with pytest.raises(InvalidPayloadError):
        prepare(MEMBER, contact)


def test_bulk_takes_one_item_or_a_batch_up_to_the_chunk_size() -> None:
    assert prepare(ORDER, {"order_id": 1}).body == [{"order_id": 1}]
    batch = {"items": [{"order_id": n} for n in range(50)]}
    assert prepare(ORDER, batch).items == 50
    # An item that has `items` among other fields is one item (an order's lines).
    order = {"order_id": 1, "items": [{"sku": "x"}]}
    assert prepare(ORDER, order).body == [order]
    with pytest.raises(InvalidPayloadError, match="at most 50"):
        prepare(ORDER, {"items": [{"order_id": n} for n in range(51)]})
    with pytest.raises(InvalidPayloadError, match="at most 20"):
        prepare(CARD, {"items": [{"card": n} for n in range(21)]})
    bad: object
    for bad in ({}, {"items": []}, {"items": {}}, {"items": [{}]}, [{"order_id": 1}], "x"):
        with pytest.raises(InvalidPayloadError):
            prepare(ORDER, bad)


def test_routes() -> None:
    assert resolve_route(SALE, None) == Route("event", "acme_sale")
    assert resolve_route(MEMBER, None) == Route("contact", "contacts")
    assert resolve_route(ORDER, None) == Route("bulk", "orders")
    ids = {"defIds": {"loyalty_cards": 12}, "sourceIds": {}}
    assert resolve_route(CARD, ids) == Route("bulk", "custom-data-records/12")
    assert resolve_route(CARD, {"defIds": {"loyalty_cards": " 7a "}}).path == (
        "custom-data-records/7a"
    )
    missing: object
    for missing in (None, {}, {"defIds": {}}, {"defIds": {"loyalty_cards": True}}, {"defIds": 3}):
        with pytest.raises(NotProvisionedError, match="'loyalty_cards' is not provisioned"):
            resolve_route(CARD, missing)
    for route in (Route("event", "acme_sale"), Route("bulk", "custom-data-records/12")):
        assert Route.decode(route.encode()) == route
    for bad in ("", "event:", "nope:x", "bulk"):
        with pytest.raises(ValueError, match="not an inbound route"):
            Route.decode(bad)


def test_dedup_key_is_the_apps_key_or_the_signature() -> None:
    assert dedup_key("sale", "abc", "order-1") == "order-1"
    assert dedup_key("sale", "abc", None) == "sig:sale:abc"
    assert dedup_key("sale", "abc", "") == "sig:sale:abc"
    with pytest.raises(InvalidIdempotencyKeyError, match="longer than 255"):
        dedup_key("sale", "abc", "k" * 256)
    with pytest.raises(InvalidIdempotencyKeyError, match="printable ASCII"):
        dedup_key("sale", "abc", "clé")


def test_upstream_key_is_stable_and_per_installation() -> None:
    key = upstream_idempotency_key("inst_1", "order-1")
    assert key == upstream_idempotency_key("inst_1", "order-1")
    assert key != upstream_idempotency_key("inst_2", "order-1")
    assert key.startswith("inbound-")
    assert "order-1" not in key


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        *[(None, False), (400, True), (401, True), (404, True), (409, True), (422, True)],
        *[(408, False), (429, False), (500, False), (502, False), (503, False), (302, False)],
    ],
)
def test_which_failures_are_permanent(status: int | None, permanent: bool) -> None:
    assert is_permanent(status) is permanent
