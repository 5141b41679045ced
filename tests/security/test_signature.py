"""Timestamped HMAC signatures (PROTOCOL §1.1)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.security.signature import sign, verify

NOW = 1_764_150_000
SECRET = "whsec_test_secret"

# Vectors computed independently with the OpenSSL command line:
#   printf '%s' '<ts>.<body>' | openssl dgst -sha256 -hmac '<secret>'
KNOWN_ANSWERS = [
    (
        "whsec_test_secret",
        "1764150000",
        b'{"event":"integration.installed","installation_id":"inst_42"}',
        "ae55ec5231a55c9c9c65c5a832e7cc6aeedb051fed9ff97304e535e895995f03",
    ),
    ("k", "1700000000", b"", "5c2999a43333a6877f49c8003f235c4f6de40f85b1b7414b70bd470a8db53d97"),
    (
        "rotated-secret-2",
        "1764150000",
        '{"amount":"12.50","name":"Zoë"}'.encode(),
        "a9475da0ba6b6c39be9e8604b3a10b7bd3a275a7aada8d36126f7eaabd3a6140",
    ),
]


@pytest.mark.parametrize(("secret", "timestamp", "body", "expected"), KNOWN_ANSWERS)
def test_known_answer_vectors(secret: str, timestamp: str, body: bytes, expected: str) -> None:
    assert sign(secret, timestamp, body) == expected
    result = verify(
        secrets=[secret], timestamp=timestamp, signature=expected, body=body, now=int(timestamp)
    )
    assert result.ok


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
@pytest.mark.parametrize(
    "body", [b"{}", b'{"a":[1,2,3]}', "é ü ✓".encode(), bytes(range(32, 127)) * 40]
)
def test_matches_openssl_live(body: bytes) -> None:
    message = b"1764150000." + body
    openssl = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET, "-r"],
        input=message,
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert sign(SECRET, "1764150000", body) == openssl.stdout.split()[0].decode()


def _check(timestamp: str, *, now: int = NOW, tolerance: int = 300, body: bytes = b"{}") -> str:
    signature = sign(SECRET, timestamp, body) if timestamp.isascii() else "0" * 64
    result = verify(
        secrets=[SECRET],
        timestamp=timestamp,
        signature=signature,
        body=body,
        now=now,
        tolerance_seconds=tolerance,
    )
    return "ok" if result.ok else str(result.reason)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0, "ok"),
        (-300, "ok"),  # exactly at tolerance
        (-301, "timestamp_out_of_tolerance"),  # one second past
        (60, "ok"),  # 60 s ahead
        (61, "timestamp_out_of_tolerance"),  # 61 s ahead
    ],
)
def test_window_edges(offset: int, expected: str) -> None:
    assert _check(str(NOW + offset)) == expected


def test_future_limit_shrinks_with_a_small_tolerance() -> None:
    assert _check(str(NOW + 30), tolerance=30) == "ok"
    assert _check(str(NOW + 31), tolerance=30) == "timestamp_out_of_tolerance"
    assert _check(str(NOW - 30), tolerance=30) == "ok"
    assert _check(str(NOW - 31), tolerance=30) == "timestamp_out_of_tolerance"


@pytest.mark.parametrize(
    "timestamp",
    [
        "0x6924f7f0",
        "1.7e9",
        "1e9",
        " 1764150000",
        "1764150000 ",
        "+1764150000",
        "-5",
        "١٧٦٤١٥٠٠٠٠",
        "1764150000.0",
        "9" * 16,
    ],
)
def test_timestamps_must_be_ascii_digits(timestamp: str) -> None:
    assert _check(timestamp) == "invalid_timestamp"


def test_rotation_accepts_any_current_secret() -> None:
    body = b'{"event":"integration.activated"}'
    old = sign("old-secret", NOW, body)
    new = sign("new-secret", NOW, body)
    for signature in (old, new):
        assert verify(
            secrets=["new-secret", "old-secret"],
            timestamp=str(NOW),
            signature=signature,
            body=body,
            now=NOW,
        ).ok
    retired = sign("retired-secret", NOW, body)
    result = verify(
        secrets=["new-secret", "old-secret"],
        timestamp=str(NOW),
        signature=retired,
        body=body,
        now=NOW,
    )
    assert result.reason == "signature_mismatch"


@pytest.mark.parametrize(
    ("timestamp", "signature"), [(None, "ab"), (str(NOW), None), ("", "ab"), (str(NOW), "")]
)
def test_missing_headers(timestamp: str | None, signature: str | None) -> None:
    result = verify(secrets=[SECRET], timestamp=timestamp, signature=signature, body=b"", now=NOW)
    assert result.reason == "missing_signature_headers"
    assert not result


def test_no_secret_configured() -> None:
    result = verify(secrets=[], timestamp=str(NOW), signature="00" * 32, body=b"", now=NOW)
    assert result.reason == "no_secret_configured"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1],  # wrong length
        lambda s: s + "0",
        lambda s: s.upper(),  # not lower-case hex
        lambda s: s[:-1] + ("0" if s[-1] != "0" else "1"),
        lambda s: "é" * 64,  # not ASCII at all
        lambda s: "",
    ],
)
def test_mangled_signatures_mismatch(mangle) -> None:
    body = b'{"x":1}'
    signature = mangle(sign(SECRET, NOW, body))
    result = verify(secrets=[SECRET], timestamp=str(NOW), signature=signature, body=body, now=NOW)
    assert not result.ok


def test_body_is_covered_byte_for_byte() -> None:
    signature = sign(SECRET, NOW, b'{"a":1}')
    result = verify(
        secrets=[SECRET], timestamp=str(NOW), signature=signature, body=b'{"a": 1}', now=NOW
    )
    assert result.reason == "signature_mismatch"


def test_timestamp_is_covered() -> None:
    signature = sign(SECRET, NOW, b"{}")
    result = verify(
        secrets=[SECRET], timestamp=str(NOW + 1), signature=signature, body=b"{}", now=NOW
    )
    assert result.reason == "signature_mismatch"


@given(body=st.binary(max_size=2048), secret=st.text(min_size=1, max_size=64))
def test_round_trip(body: bytes, secret: str) -> None:
    signature = sign(secret, NOW, body)
    assert len(signature) == 64
    assert signature == signature.lower()
    assert verify(secrets=[secret], timestamp=str(NOW), signature=signature, body=body, now=NOW).ok
