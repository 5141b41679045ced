"""The JSON policy of every door (sidecar.payloads)."""

from __future__ import annotations

import pytest

from sidecar.payloads import (
    MAX_DEPTH,
    MAX_INT,
    MIN_INT,
    InvalidJsonError,
    UnsafeNumber,
    parse_json,
)


def test_valid_json() -> None:
    assert parse_json(b'{"a": [1, 2.5, "\\u00e9", null, true]}') == {"a": [1, 2.5, "é", None, True]}


def test_brackets_and_escapes_inside_strings_do_not_count_as_nesting() -> None:
    deep_text = "[" * 10_000 + '\\"' + "{" * 10_000
    assert parse_json(b'{"a": "' + deep_text.encode() + b'"}') == {"a": deep_text.replace("\\", "")}


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (b"not json", "invalid_json"),
        (b'{"a": 1', "invalid_json"),
        (b"", "invalid_json"),
        (b'"unterminated \\" [[[', "invalid_json"),
        (b"\xff\xfe", "invalid_utf8"),
        (b'{"a": "caf\xe9"}', "invalid_utf8"),
        (b'{"a": NaN}', "non_finite_number"),
        (b"[Infinity]", "non_finite_number"),
        (b"[-Infinity]", "non_finite_number"),
        (b'{"amount": 1e400}', "non_finite_number"),
        (b'{"amount": -1e400}', "non_finite_number"),
        (b"[" + b"9" * 400 + b".5]", "non_finite_number"),
        (b'{"n": ' + str(2**64).encode() + b"}", "integer_out_of_range"),
        (b'{"n": ' + str(MAX_INT + 1).encode() + b"}", "integer_out_of_range"),
        (b'{"n": ' + str(MIN_INT - 1).encode() + b"}", "integer_out_of_range"),
        (b'{"n": ' + b"9" * 5000 + b"}", "integer_out_of_range"),
        (b'{"a": "x\\u0000y"}', "nul_character"),
        (b'{"x\\u0000": 1}', "nul_character"),
        (b'{"a": "x\x00y"}', "nul_character"),
        (b"[" * 10_000 + b"]" * 10_000, "too_deep"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "too_deep"),
        (b"[" * 100_000, "too_deep"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "too_deep"),
    ],
)
def test_invalid_bodies_name_the_rule(raw: bytes, rule: str) -> None:
    with pytest.raises(InvalidJsonError) as caught:
        parse_json(raw)
    assert caught.value.rule == rule


def test_limits_are_inclusive() -> None:
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json(nested) is not None
    bounds = f"[{MAX_INT}, {MIN_INT}, 1e308, -1e308]".encode()
    assert parse_json(bounds) == [MAX_INT, MIN_INT, 1e308, -1e308]


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    assert parse_json(b'["\\\\u0000"]') == ["\\u0000"]


def test_a_wide_flat_body_is_not_deep() -> None:
    wide = b"[" + b",".join([b"[{}]"] * 50_000) + b"]"
    assert len(parse_json(wide)) == 50_000  # type: ignore[arg-type]


def test_numbers_can_be_marked_instead_of_refusing_the_body() -> None:
    value = parse_json(b"[1e400, -Infinity, 18446744073709551616, 2.5]", numbers="mark")
    assert value == [
        UnsafeNumber("non_finite_number", "1e400"),
        UnsafeNumber("non_finite_number", "-Infinity"),
        UnsafeNumber("integer_out_of_range", "18446744073709551616"),
        2.5,
    ]
    with pytest.raises(InvalidJsonError):  # every other rule still refuses
        parse_json(b'["a\\u0000", 1e400]', numbers="mark")
