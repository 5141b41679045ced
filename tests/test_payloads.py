"""Safe JSON parsing of request bodies."""

from __future__ import annotations

import pytest

from sidecar.payloads import MAX_DEPTH, InvalidJsonError, parse_json


def test_valid_json() -> None:
    assert parse_json(b'{"a": [1, 2.5, "\\u00e9", null, true]}') == {"a": [1, 2.5, "é", None, True]}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b'{"a": 1', "not JSON"),
        (b"", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b"[Infinity]", "Infinity is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nests deeper"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not JSON"),
    ],
)
def test_invalid_bodies(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidJsonError, match=reason):
        parse_json(raw)


def test_depth_limit_is_inclusive() -> None:
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json(nested) is not None
