"""AES-256-GCM at rest (PROTOCOL §7.1)."""

from __future__ import annotations

import os
import re

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from sidecar.errors import CipherError
from sidecar.security.cipher import (
    AesGcmCipher,
    PlaintextCipher,
    associated_data,
    make_cipher,
)

KEY = bytes.fromhex("00112233445566778899aabbccddeeff" * 2)
AAD = associated_data("inst_1", "access_token")
FORMAT = re.compile(r"gcm:[0-9a-f]{24}:[0-9a-f]{32}:(?:[0-9a-f]{2})*")


@pytest.fixture
def cipher() -> AesGcmCipher:
    return AesGcmCipher(KEY)


@given(plaintext=st.text(max_size=500))
def test_round_trip(plaintext: str) -> None:
    cipher = AesGcmCipher(KEY)
    sealed = cipher.encrypt(plaintext, AAD)
    assert FORMAT.fullmatch(sealed)
    assert cipher.decrypt(sealed, AAD) == plaintext


def test_each_encryption_uses_a_fresh_iv(cipher: AesGcmCipher) -> None:
    first = cipher.encrypt("int_token", AAD)
    second = cipher.encrypt("int_token", AAD)
    assert first != second
    assert first.split(":")[1] != second.split(":")[1]


def test_format_matches_an_independent_implementation(cipher: AesGcmCipher) -> None:
    # Build a value by hand from the spec and the raw primitive; the cipher must open it.
    iv = os.urandom(12)
    sealed = AESGCM(KEY).encrypt(iv, b"int_abc", AAD.encode())
    stored = f"gcm:{iv.hex()}:{sealed[-16:].hex()}:{sealed[:-16].hex()}"
    assert cipher.decrypt(stored, AAD) == "int_abc"
    # …and what the cipher writes opens with the raw primitive.
    _, iv_hex, tag_hex, data_hex = cipher.encrypt("int_xyz", AAD).split(":")
    opened = AESGCM(KEY).decrypt(
        bytes.fromhex(iv_hex), bytes.fromhex(data_hex + tag_hex), AAD.encode()
    )
    assert opened == b"int_xyz"


@pytest.mark.parametrize(
    "other_aad",
    [
        associated_data("inst_2", "access_token"),  # copied to another installation
        associated_data("inst_1", "inbound_secret"),  # copied to another row
        "inst_1:access_token ",
    ],
)
def test_relocated_value_fails(cipher: AesGcmCipher, other_aad: str) -> None:
    sealed = cipher.encrypt("int_secret", AAD)
    with pytest.raises(CipherError, match="failed authentication"):
        cipher.decrypt(sealed, other_aad)


def test_wrong_key_fails(cipher: AesGcmCipher) -> None:
    sealed = cipher.encrypt("int_secret", AAD)
    with pytest.raises(CipherError, match="failed authentication"):
        AesGcmCipher(os.urandom(32)).decrypt(sealed, AAD)


def _flip(hex_text: str, position: int) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[position] ^= 0x01
    return raw.hex()


@pytest.mark.parametrize("part", [1, 2, 3])
def test_flipped_bit_in_any_part_fails(cipher: AesGcmCipher, part: int) -> None:
    parts = cipher.encrypt("int_secret_value", AAD).split(":")
    parts[part] = _flip(parts[part], 0)
    with pytest.raises(CipherError, match="failed authentication"):
        cipher.decrypt(":".join(parts), AAD)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda s: s[:-2], "failed authentication"),  # one ciphertext byte short
        (lambda s: s.rsplit(":", 1)[0], "expected gcm:<iv>:<tag>:<data>"),
        (lambda s: s[:20], "expected gcm:<iv>:<tag>:<data>"),
        (lambda s: s + "0", "not lower-case hex"),  # odd length
        (lambda s: s.upper().replace("GCM", "gcm"), "not lower-case hex"),
        (lambda s: s[:-2] + "zz", "not lower-case hex"),
        (lambda s: "gcm:" + "ab" * 11 + s[28:], "the IV must be 12 bytes"),
        (lambda s: s.replace("gcm:", "aes:"), "expected the 'gcm:' format"),
        (lambda s: s + ":00", "expected gcm:<iv>:<tag>:<data>"),
        (lambda s: s.replace(":", ": "), "not lower-case hex"),
    ],
)
def test_malformed_values_fail_clearly(cipher: AesGcmCipher, mangle, message: str) -> None:
    sealed = cipher.encrypt("int_secret_value", AAD)
    with pytest.raises(CipherError, match=re.escape(message)):
        cipher.decrypt(mangle(sealed), AAD)


def test_plain_value_rejected_when_a_key_is_set(cipher: AesGcmCipher) -> None:
    with pytest.raises(CipherError, match="refusing a plaintext secret"):
        cipher.decrypt("plain:int_abc", AAD)


def test_plaintext_mode_round_trip_and_refusals() -> None:
    plain = make_cipher(None)
    assert isinstance(plain, PlaintextCipher)
    assert not plain.encrypts
    assert plain.encrypt("int_abc", AAD) == "plain:int_abc"
    assert plain.decrypt("plain:int_abc", AAD) == "int_abc"
    sealed = AesGcmCipher(KEY).encrypt("int_abc", AAD)
    with pytest.raises(CipherError, match="no CREDENTIALS_KEY"):
        plain.decrypt(sealed, AAD)
    with pytest.raises(CipherError, match="'plain:' format"):
        plain.decrypt("int_abc", AAD)


def test_key_length_is_checked() -> None:
    with pytest.raises(ValueError, match="32-byte key"):
        AesGcmCipher(b"short")
    assert "00112233" not in repr(AesGcmCipher(KEY))
