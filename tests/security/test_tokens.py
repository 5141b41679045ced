"""Constant-time token comparison."""

from __future__ import annotations

import pytest

from sidecar.security.tokens import TokenMatcher, tokens_equal

TOKEN = "adm_7f3c9a1e5b2d4f6a8c0e1b3d5f7a9c2e"


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (TOKEN, True),
        (TOKEN[:-1], False),  # prefix
        (TOKEN + "x", False),
        (TOKEN.upper(), False),
        ("", False),
        (None, False),
        ("é" * 40, False),
        ("\udcff", False),  # lone surrogate from a badly decoded header
    ],
)
def test_matches(candidate: str | None, expected: bool) -> None:
    assert TokenMatcher(TOKEN).matches(candidate) is expected
    assert tokens_equal(TOKEN, candidate) is expected


def test_empty_expected_token_is_refused() -> None:
    with pytest.raises(ValueError, match="empty token"):
        TokenMatcher("")


def test_repr_hides_the_token() -> None:
    assert TOKEN not in repr(TokenMatcher(TOKEN))
