"""Redaction of log metadata by key name (PROTOCOL §7.2)."""

from __future__ import annotations

import pytest

from sidecar.security.redaction import CIRCULAR, REDACTED, TRUNCATED, redact


@pytest.mark.parametrize(
    "key",
    [
        "secret",
        "client_secret",
        "WEBHOOK_SECRET",
        "password",
        "Passwd",
        "api_key",
        "api-key",
        "apikey",
        "X-Api-Key",
        "token",
        "access_token",
        "accessToken",
        "refresh_token",
        "Authorization",
        "credentials",
        "db_password_2",
    ],
)
def test_sensitive_keys_are_masked(key: str) -> None:
    assert redact({key: "hunter2", "shop": "demo"}) == {key: REDACTED, "shop": "demo"}


@pytest.mark.parametrize("key", ["shop_domain", "event", "installation_id", "signature_ok", "id"])
def test_other_keys_are_kept(key: str) -> None:
    assert redact({key: "value"}) == {key: "value"}


def test_nested_structures_are_walked_without_mutating_the_input() -> None:
    original = {
        "event": "integration.installed",
        "configs": {"api_key": "k", "store": {"password": "p", "name": "n"}},
        "list": [{"token": "t"}, ("a", {"secret": "s"})],
    }
    assert redact(original) == {
        "event": "integration.installed",
        "configs": {"api_key": REDACTED, "store": {"password": REDACTED, "name": "n"}},
        "list": [{"token": REDACTED}, ["a", {"secret": REDACTED}]],
    }
    assert original["configs"]["api_key"] == "k"  # type: ignore[index]


def test_extra_keys_are_masked_case_insensitively() -> None:
    assert redact({"Merchant_PIN": "1234", "pin2": "x"}, extra_keys={"merchant_pin"}) == {
        "Merchant_PIN": REDACTED,
        "pin2": "x",
    }


def test_depth_beyond_eight_is_truncated() -> None:
    deep: dict[str, object] = {"token": "deepest"}
    for _ in range(10):
        deep = {"level": deep}
    cleaned = redact(deep)
    for _ in range(8):
        assert isinstance(cleaned, dict)
        cleaned = cleaned["level"]
    assert cleaned == TRUNCATED


def test_cycles_are_cut() -> None:
    loop: dict[str, object] = {"name": "a"}
    loop["self"] = loop
    assert redact(loop) == {"name": "a", "self": CIRCULAR}
    shared = {"x": 1}
    assert redact({"a": shared, "b": shared}) == {"a": {"x": 1}, "b": {"x": 1}}


def test_scalars_pass_through() -> None:
    assert redact("token") == "token"
    assert redact(None) is None
    assert redact(3) == 3
