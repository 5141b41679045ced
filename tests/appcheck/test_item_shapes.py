"""What an item pushed to a ShopiMind resource must carry, and the sentences that say so."""

from __future__ import annotations

from sidecar.shopimind.item_shapes import ITEM_SHAPES, custom_data_shape, item_problems
from sidecar.shopimind.resources import BULK_RESOURCES


def test_every_bulk_resource_has_a_shape_with_identifying_fields() -> None:
    assert set(ITEM_SHAPES) == set(BULK_RESOURCES)
    for shape in ITEM_SHAPES.values():
        assert shape.identity
        assert set(shape.identity) <= set(shape.required)


def test_a_complete_item_has_no_problem() -> None:
    item = {
        "carrier_id": "dhl",
        "name": "DHL",
        "is_active": True,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-02T00:00:00Z",
        "extra": "ignored",
    }
    assert item_problems(item, ITEM_SHAPES["orders-carriers"]) == []


def test_missing_null_and_mistyped_fields_are_named_without_their_values() -> None:
    item = {
        "carrier_id": 7,
        "name": None,
        "is_active": "yes",
        "created_at": ["2026"],
        "updated_at": {"at": "secret-ish"},
    }
    assert item_problems(item, ITEM_SHAPES["orders-carriers"]) == [
        "`carrier_id` is a number, the resource wants a string",
        "`name` is missing, the resource requires it",
        "`is_active` is a string, the resource wants true or false",
        "`created_at` is a list, the resource wants a string",
        "`updated_at` is an object, the resource wants a string",
    ]


def test_a_boolean_is_not_a_number() -> None:
    problems = item_problems({"amount": True}, ITEM_SHAPES["orders"])
    assert "`amount` is a boolean, the resource wants a number" in problems


def test_a_custom_data_shape_comes_from_its_definition() -> None:
    shape = custom_data_shape(
        "cards",
        fields={"number": ("text", True), "points": ("number", True), "note": ("text", False)},
        unique_keys=("number",),
    )
    assert shape.resource == "custom_data:cards"
    assert shape.identity == ("number",)
    assert item_problems({"number": "A1", "points": "12"}, shape) == [
        "`points` is a string, the resource wants a number"
    ]
    assert item_problems({"number": "A1", "points": 12.5}, shape) == []
