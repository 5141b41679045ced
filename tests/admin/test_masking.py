"""Personal data in payloads shown to an operator: masked, with the shape kept."""

from __future__ import annotations

import pytest

from sidecar.admin.masking import MASK, mask_pii


@pytest.mark.parametrize(
    ("key", "value", "masked"),
    [
        ("email", "jane.doe@shop.example", "j***@***.example"),
        ("customer_email", "x@y.fr", "x***@***.fr"),
        ("email", "not-an-address", "n***"),
        ("phone", "+33 6 12 34 56 78", "***78"),
        ("mobilePhone", "0612345678", "***78"),
        ("first_name", "Jane", "J***"),
        ("lastName", "Doe", "D***"),
        ("name", "Jane Doe", "J***"),
        ("customer_name", "Jane Doe", "J***"),
        ("billing_address", "12 rue de la Paix", "1***"),
        ("city", "Paris", "P***"),
        ("postcode", "75001", "7***"),
        ("zip", 75001, MASK),
        ("birthday", "1990-01-01", "1***"),
    ],
)
def test_personal_fields_are_masked(key: str, value: object, masked: object) -> None:
    assert mask_pii({key: value}) == {key: masked}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("product_name", "Blue shirt"),
        ("amount", 12.5),
        ("id", 42),
        ("updated_at", "2026-11-26T09:00:00Z"),
        ("active", True),
        ("email", ""),
        ("mailing_list", True),
    ],
)
def test_other_fields_are_kept(key: str, value: object) -> None:
    assert mask_pii({key: value}) == {key: value}


def test_emails_in_free_text_and_nested_values() -> None:
    payload = {
        "note": "call back, or write to jane@shop.example please",
        "customer": {"address": {"line1": "12 rue", "country": "FR"}, "emails": ["a@b.co"]},
        "items": [{"customer_email": "x@y.fr", "sku": "A-1"}],
    }
    assert mask_pii(payload) == {
        "note": "call back, or write to j***@***.example please",
        "customer": {"address": {"line1": "1***", "country": "F***"}, "emails": ["a***@***.co"]},
        "items": [{"customer_email": "x***@***.fr", "sku": "A-1"}],
    }


def test_secrets_are_redacted_too() -> None:
    assert mask_pii({"api_key": "k-1", "settings": {"password": "p"}}) == {
        "api_key": "[redacted]",
        "settings": {"password": "[redacted]"},
    }


def test_the_input_is_not_changed_and_depth_is_bounded() -> None:
    payload: dict[str, object] = {"email": "a@b.c"}
    mask_pii(payload)
    assert payload == {"email": "a@b.c"}
    deep: object = "a@b.c"
    for _ in range(50):
        deep = [deep]
    assert "a@b.c" not in repr(mask_pii(deep))
