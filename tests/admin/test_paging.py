"""Listing bounds: absurd numbers clamped, anything else refused with a reason."""

from __future__ import annotations

import pytest

from sidecar.admin.errors import InvalidRequestError
from sidecar.admin.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, Page


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [
        (None, None, (DEFAULT_LIMIT, 0)),
        ("", "", (DEFAULT_LIMIT, 0)),
        ("10", "20", (10, 20)),
        (" 7 ", "+3", (7, 3)),
        ("0", "0", (1, 0)),
        ("-5", "-9", (1, 0)),
        ("1000000000", "0", (MAX_LIMIT, 0)),
        ("9" * 40, "9" * 40, (MAX_LIMIT, MAX_OFFSET)),
        ("-" + "9" * 40, "-" + "9" * 40, (1, 0)),
        (25, 50, (25, 50)),
    ],
)
def test_bounds_are_clamped(
    limit: str | int | None, offset: str | int | None, expected: tuple[int, int]
) -> None:
    page = Page.parse(limit, offset)
    assert (page.limit, page.offset) == expected


@pytest.mark.parametrize(
    ("limit", "offset", "named"),
    [("abc", None, "limit"), ("1.5", None, "limit"), (None, "1e3", "offset"), ("٣", None, "limit")],
)
def test_a_non_number_is_refused_naming_the_parameter(
    limit: str | None, offset: str | None, named: str
) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        Page.parse(limit, offset)


def test_the_body_reports_the_bounds_used() -> None:
    assert Page.parse("2", "4").body([{"a": 1}]) == {
        "items": [{"a": 1}],
        "limit": 2,
        "offset": 4,
        "count": 1,
    }
