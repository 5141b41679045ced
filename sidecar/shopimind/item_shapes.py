"""What an item pushed to a ShopiMind bulk resource must carry: its required fields, their
JSON types, and the fields that identify it.

Facts from ShopiMind's SDK (`@shopimind/sdk-js` 1.1.0, the `Spm*Data` types): only the
fields it declares as required are listed here (optional ones may be absent or null). A
custom data target's shape comes from its definition in `integration.toml` instead.

A leaf module, like `resources.py`: `app-check` reads it to tell a vendor, before
ShopiMind does, that an item lacks a field or has the wrong type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "ITEM_SHAPES",
    "ItemShape",
    "JsonType",
    "custom_data_shape",
    "item_problems",
    "json_type_of",
]

JsonType = Literal["string", "number", "boolean", "object", "list", "any"]

_DESCRIBED: Final[dict[str, str]] = {
    "string": "a string",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "list": "a list",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemShape:
    """The fields an item must carry (name → JSON type) and the fields naming it."""

    resource: str
    required: Mapping[str, JsonType]
    identity: tuple[str, ...]
    """Together, these fields name one item: no two items of a window may share them."""


def _shape(resource: str, identity: tuple[str, ...], **required: JsonType) -> ItemShape:
    return ItemShape(resource=resource, required=required, identity=identity)


_DATED: Final[dict[str, JsonType]] = {"created_at": "string", "updated_at": "string"}

ITEM_SHAPES: Final[dict[str, ItemShape]] = {
    shape.resource: shape
    for shape in (
        _shape(
            "customers",
            ("customer_id",),
            customer_id="string",
            email="string",
            first_name="string",
            last_name="string",
            is_opt_in="boolean",
            is_newsletter_subscribed="boolean",
            lang="string",
            is_active="boolean",
            **_DATED,
        ),
        _shape(
            "customers/addresses/bulk",
            ("customer_id", "address_id"),
            customer_id="string",
            address_id="number",
            first_name="string",
            last_name="string",
            address_line_1="string",
            postal_code="string",
            city="string",
            country="string",
            is_active="boolean",
        ),
        _shape(
            "customers-groups",
            ("group_id", "lang"),
            group_id="string",
            lang="string",
            name="string",
            **_DATED,
        ),
        _shape(
            "newsletter-subscribers",
            ("email",),
            email="string",
            is_subscribed="boolean",
            first_name="string",
            last_name="string",
            postal_code="string",
            lang="string",
            updated_at="string",
        ),
        _shape(
            "products",
            ("product_id", "lang"),
            product_id="number",
            lang="string",
            name="string",
            description="string",
            link="string",
            currency="string",
            price="number",
            quantity_remaining="number",
            is_active="boolean",
            **_DATED,
        ),
        _shape(
            "products/images/bulk",
            ("product_id", "image_id", "lang"),
            product_id="string",
            image_id="string",
            lang="string",
            url="string",
            is_default="boolean",
        ),
        _shape(
            "products/variations/bulk",
            ("product_id", "variation_id", "lang"),
            product_id="string",
            variation_id="number",
            name="string",
            lang="string",
            link="string",
            price="number",
            quantity_remaining="number",
            is_default="boolean",
        ),
        _shape(
            "products-categories",
            ("category_id", "lang"),
            category_id="number",
            lang="string",
            name="string",
            description="string",
            link="string",
            is_active="boolean",
            **_DATED,
        ),
        _shape(
            "products-manufacturers",
            ("manufacturer_id",),
            manufacturer_id="string",
            name="string",
            is_active="boolean",
            **_DATED,
        ),
        _shape(
            "orders",
            ("order_id",),
            order_id="string",
            lang="string",
            status_id="string",
            customer="object",
            products="list",
            cart_id="string",
            cart_updated_at="string",
            amount="number",
            amount_without_tax="number",
            shipping_costs="number",
            shipping_costs_without_tax="number",
            currency="string",
            is_confirmed="boolean",
            **_DATED,
        ),
        _shape(
            "orders-carriers",
            ("carrier_id",),
            carrier_id="string",
            name="string",
            is_active="boolean",
            **_DATED,
        ),
        _shape(
            "orders-statuses",
            ("status_id", "lang"),
            status_id="string",
            lang="string",
            name="string",
            is_deleted="boolean",
            **_DATED,
        ),
        _shape(
            "vouchers",
            ("voucher_id", "lang"),
            voucher_id="string",
            lang="string",
            code="string",
            description="string",
            started_at="string",
            type_voucher="string",
            minimum_amount="number",
            currency="string",
            reduction_tax="boolean",
            is_used="boolean",
            is_active="boolean",
            **_DATED,
        ),
    )
}
"""The shape of every bulk resource a sync step may target, by path."""

_CUSTOM_FIELD_TYPES: Final[dict[str, JsonType]] = {
    "bool": "boolean",
    "text": "string",
    "longtext": "string",
    "number": "number",
    "decimal": "number",
    "list": "any",
    "date": "string",
    "datetime": "string",
    "json": "any",
    "geolocation": "any",
}
"""A custom data field's declared type (PROTOCOL §4) → the JSON type its value must have."""


def custom_data_shape(
    name: str, *, fields: Mapping[str, tuple[str, bool]], unique_keys: tuple[str, ...]
) -> ItemShape:
    """The shape of a custom data definition's records: `fields` maps each field name to
    its declared type and whether it is required."""
    required = {
        field: _CUSTOM_FIELD_TYPES.get(kind, "any")
        for field, (kind, is_required) in fields.items()
        if is_required
    }
    return ItemShape(resource=f"custom_data:{name}", required=required, identity=unique_keys)


def json_type_of(value: object) -> str:
    """The JSON type of a parsed value, in the words `ItemShape` uses (`null` for None)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object" if isinstance(value, dict) else type(value).__name__


def item_problems(item: Mapping[str, object], shape: ItemShape) -> list[str]:
    """What is wrong with `item` for `shape`, one sentence each (empty when it is fine).

    ("`amount` is a string, the resource wants a number"). Values are never quoted: an
    item is customer data.
    """
    problems: list[str] = []
    for field, wanted in shape.required.items():
        if field not in item or item[field] is None:
            problems.append(f"`{field}` is missing, the resource requires it")
            continue
        if wanted == "any":
            continue
        found = json_type_of(item[field])
        if found != wanted:
            article = "an" if found[0] in "aeiou" else "a"
            problems.append(
                f"`{field}` is {article} {found}, the resource wants {_DESCRIBED[wanted]}"
            )
    return problems
