"""The demo's sample vendor app: the fake vendor app loaded with ShopiMind-shaped data for
the example declaration (a point-of-sale vendor, "Acme POS")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sidecar.testing.vendor_app import Dataset, FakeVendorApp

__all__ = ["SAMPLE_COUNTS", "sample_app"]

SAMPLE_COUNTS = {"customers": 240, "orders": 180, "products": 60, "loyalty_cards": 90}
_FIRST_NAMES = ("Camille", "Louis", "Léa", "Hugo", "Chloé", "Jules", "Inès", "Adam")
_LAST_NAMES = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit")
_STORES = ("store-paris", "store-lyon")


_CREATED_AT = "2025-01-06T09:00:00.000Z"
"""When every sample record was created (each item's `updated_at` is spread over 30 days)."""


def _customer(index: int) -> dict[str, object]:
    first = _FIRST_NAMES[index % len(_FIRST_NAMES)]
    last = _LAST_NAMES[index % len(_LAST_NAMES)]
    return {
        "customer_id": f"c-{index}",
        "email": f"{first.lower()}.{last.lower()}.{index}@example.com",
        "first_name": first,
        "last_name": last,
        "is_opt_in": index % 3 == 0,
        "is_newsletter_subscribed": index % 4 == 0,
        "lang": "fr",
        "is_active": True,
        "created_at": _CREATED_AT,
    }


def _order(store: str) -> Callable[[int], dict[str, object]]:
    def build(index: int) -> dict[str, object]:
        amount = round(12.5 + (index * 7.3) % 180, 2)
        customer = index % SAMPLE_COUNTS["customers"]
        return {
            "order_id": f"{store}-o-{index}",
            "lang": "fr",
            "status_id": "paid",
            "customer": {
                "customer_id": f"c-{customer}",
                "email": f"customer.{customer}@example.com",
                "created_at": _CREATED_AT,
            },
            "products": [
                {
                    "product_id": index % SAMPLE_COUNTS["products"],
                    "price": amount,
                    "price_without_tax": round(amount / 1.2, 2),
                    "quantity": 1,
                }
            ],
            "cart_id": f"{store}-cart-{index}",
            "cart_updated_at": _CREATED_AT,
            "amount": amount,
            "amount_without_tax": round(amount / 1.2, 2),
            "shipping_costs": 0,
            "shipping_costs_without_tax": 0,
            "currency": "EUR",
            "is_confirmed": True,
            "created_at": _CREATED_AT,
        }

    return build


def _product(index: int) -> dict[str, object]:
    return {
        "product_id": index,
        "lang": "fr",
        "name": f"Article {index}",
        "description": f"Article {index} of the Acme POS catalog",
        "link": f"https://shop.acme-pos.example/p/{index}",
        "currency": "EUR",
        "price": round(9.9 + index, 2),
        "quantity_remaining": index % 17,
        "is_active": True,
        "created_at": _CREATED_AT,
    }


def _card(index: int) -> dict[str, object]:
    return {
        "card_number": f"AC-{100000 + index}",
        "customer_id": f"c-{index}",
        "program_code": "classic",
        "points": (index * 37) % 1200,
        "tier": ("silver", "gold", "platinum")[index % 3],
    }


def sample_app(secret: str) -> FakeVendorApp:
    """A vendor app with sample customers, orders (two stores), products and loyalty cards."""
    app = FakeVendorApp(secret)
    end = datetime.now(UTC) - timedelta(minutes=1)
    since = end - timedelta(days=30)

    def spread(count: int, item: Callable[[int], dict[str, object]]) -> Dataset:
        return Dataset.spread(count, since=since, until=end, item=item)

    app.set_dataset("customers", spread(SAMPLE_COUNTS["customers"], _customer))
    app.set_dataset("products", spread(SAMPLE_COUNTS["products"], _product))
    app.set_dataset("loyalty_cards", spread(SAMPLE_COUNTS["loyalty_cards"], _card))
    app.sources["orders"] = list(_STORES)
    per_store = SAMPLE_COUNTS["orders"] // len(_STORES)
    for store in _STORES:
        app.set_dataset("orders", spread(per_store, _order(store)), source_key=store)
    app.remote_data["stores"] = [{"value": s, "label": s.split("-")[1].title()} for s in _STORES]
    app.lifecycle_answer = {"ok": True, "external_account": {"id": "acme-1042", "name": "Bistro"}}
    app.provisioning_answer = {
        "data_sources": [
            {"key": store, "label": f"Acme POS — {store}", "type": "pos", "parent": "acme"}
            for store in _STORES
        ]
    }
    return app
