"""What can never be delivered to ShopiMind, and why, in words naming the app's item."""

from __future__ import annotations

import json

import pytest

from sidecar.shopimind.undeliverable import (
    ENCODING_PREFIX,
    FieldRule,
    ItemRules,
    encoding_problem,
    item_problem,
    item_ref,
    set_aside,
    storable,
)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": 1, "b": [1.5, "x", None, True]}, None),
        (json.loads('{"amount": 1e400}'), "$.amount is not a finite number (inf)"),
        (json.loads('{"amount": -1e400}'), "$.amount is not a finite number (-inf)"),
        (json.loads('{"lines": [{"qty": NaN}]}'), "$.lines[0].qty is not a finite number (nan)"),
        ({"n": 2**64}, "$.n is an integer beyond 64 bits"),
        ({"n": -(2**63)}, None),
        (
            {"s": json.loads('"\\ud800"')},
            "$.s is a string that is not valid UTF-8 (a lone surrogate)",
        ),
        ({"when": object()}, "$.when is not a JSON value (object)"),
        ([{"k": 1}, float("inf")], "$[1] is not a finite number (inf)"),
    ],
)
def test_encoding_problems_say_where(value: object, problem: str | None) -> None:
    assert encoding_problem(value) == problem


def test_deep_nesting_is_walked_without_recursion() -> None:
    value: object = float("nan")
    for _ in range(10_000):
        value = [value]
    found = encoding_problem(value)
    assert found is not None
    assert found.endswith("is not a finite number (nan)")
    kept = storable(value)
    for _ in range(65):
        assert isinstance(kept, list)
        kept = kept[0]
    assert kept == "<nested too deep>"


@pytest.mark.parametrize(
    ("item", "ref"),
    [
        ({"id": "c-1"}, "c-1"),
        ({"id": 42}, "42"),
        ({"external_id": "x-9", "name": "n"}, "x-9"),
        ({"id": True, "code": "V10"}, "V10"),
        ({"name": "no id"}, None),
        ("not an object", None),
    ],
)
def test_the_apps_id_of_an_item(item: object, ref: str | None) -> None:
    assert item_ref(item) == ref


RULES = ItemRules(
    fields=(
        FieldRule(name="code", type="text", required=True),
        FieldRule(name="points", type="number"),
        FieldRule(name="active", type="bool"),
        FieldRule(name="tags", type="list"),
        FieldRule(name="born", type="date"),
        FieldRule(name="extra", type="json"),
    )
)


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"id": "a", "code": "A", "points": "12.5", "active": 1, "tags": [], "extra": [1]}, None),
        ({"id": "a", "points": 3}, "item 'a': field 'code' is required"),
        ({"id": "a", "code": ""}, "item 'a': field 'code' is required"),
        ({"id": "a", "code": "A", "points": "many"}, "item 'a': field 'points' must be a number"),
        ({"id": "a", "code": "A", "points": True}, "item 'a': field 'points' must be a number"),
        (
            {"id": "a", "code": "A", "active": "yes"},
            "item 'a': field 'active' must be true or false",
        ),
        ({"id": "a", "code": "A", "tags": "x"}, None),  # one of a list field's options
        (
            {"id": "a", "code": "A", "tags": {"x": 1}},
            "item 'a': field 'tags' must be one of its options or a list of them",
        ),
        ({"id": "a", "code": {"x": 1}}, "item 'a': field 'code' must be text"),
        ({"id": "a", "code": "A", "born": [2020]}, "item 'a': field 'born' must be a date"),
        (
            {"code": "A", "points": float("inf")},
            f"item 'A' {ENCODING_PREFIX}$.points is not a finite number (inf)",
        ),
        ("text", "item is not a JSON object"),
    ],
)
def test_item_problems(item: object, problem: str | None) -> None:
    assert item_problem(item, RULES) == problem


def test_set_aside_keeps_the_order_and_a_storable_copy_of_the_poison() -> None:
    items = [{"id": "a", "v": 1}, {"id": "b", "v": float("-inf")}, {"id": "c", "v": 3}]
    good, refused = set_aside(items)
    assert good == [items[0], items[2]]
    (poison,) = refused
    assert poison.reason == "item 'b' cannot be encoded as JSON: $.v is not a finite number (-inf)"
    assert poison.item == {"id": "b", "v": "<unencodable: -inf>"}
    assert json.loads(json.dumps(storable(items), allow_nan=False))[1] == poison.item


def test_numbers_marked_while_reading_the_app_page_are_set_aside_with_their_reason() -> None:
    from sidecar.payloads import parse_json

    page = parse_json(
        b'[{"id": "A", "n": 1e400}, {"id": "B", "n": 18446744073709551616}, {"id": "C", "n": 1}]',
        numbers="mark",
    )
    assert isinstance(page, list)
    good, refused = set_aside(page)
    assert good == [{"id": "C", "n": 1}]
    assert [(r.item, r.reason) for r in refused] == [
        (
            {"id": "A", "n": "<unencodable: inf>"},
            f"item 'A' {ENCODING_PREFIX}$.n is not a finite number (inf)",
        ),
        (
            {"id": "B", "n": "<unencodable: 18446744073709551616>"},
            f"item 'B' {ENCODING_PREFIX}$.n is an integer beyond 64 bits",
        ),
    ]
