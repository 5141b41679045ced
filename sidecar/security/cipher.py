"""Encryption of secrets at rest (PROTOCOL §7.1).

With a `CREDENTIALS_KEY` (32 bytes), secrets are sealed with AES-256-GCM and stored as

    gcm:<12-byte IV hex>:<16-byte tag hex>:<ciphertext hex>

The associated data `"<installation_id>:<key>"` binds a ciphertext to its row, so a blob
copied to another row or installation fails to decrypt instead of silently working.

Without a key (development only, `ALLOW_PLAINTEXT_SECRETS=true`) secrets are stored as
`plain:<value>`; a `plain:` value is refused once a key is configured, so a database
cannot silently mix protected and unprotected secrets.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Protocol

from sidecar.errors import CipherError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_BYTES",
    "AesGcmCipher",
    "PlaintextCipher",
    "SecretCipher",
    "associated_data",
    "make_cipher",
]

KEY_BYTES = 32
_IV_BYTES = 12
_TAG_BYTES = 16
_GCM_PREFIX = "gcm:"
_PLAIN_PREFIX = "plain:"
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def associated_data(installation_id: str, key: str) -> str:
    """The AAD that binds a stored secret to its exact location."""
    return f"{installation_id}:{key}"


class SecretCipher(Protocol):
    """Seals and opens secrets; `aad` names the row the secret belongs to."""

    @property
    def encrypts(self) -> bool:
        """True when secrets are really encrypted (False only in plaintext development mode)."""
        ...

    def encrypt(self, plaintext: str, aad: str) -> str:
        """Seal `plaintext` for the row named by `aad`."""
        ...

    def decrypt(self, stored: str, aad: str) -> str:
        """Open a value sealed by `encrypt` for the same `aad`; raise CipherError otherwise."""
        ...


def _hex_field(text: str, what: str, length: int | None) -> bytes:
    if _HEX.fullmatch(text) is None:
        raise CipherError(f"encrypted value is malformed: {what} is not lower-case hex")
    raw = bytes.fromhex(text)
    if length is not None and len(raw) != length:
        raise CipherError(
            f"encrypted value is malformed: {what} must be {length} bytes; got {len(raw)}"
        )
    return raw


class AesGcmCipher:
    """AES-256-GCM with a fresh random 96-bit IV per value.

    cryptography (its Rust library and the OpenSSL inside it: ~8 MiB, ~30 ms) is loaded at
    the first secret sealed or opened, not when the cipher is made: `serve` needs none
    before it is ready."""

    __slots__ = ("_aead", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"AES-256 needs a {KEY_BYTES}-byte key; got {len(key)} bytes")
        self._key = key
        self._aead: AESGCM | None = None

    def _opened(self) -> AESGCM:
        aead = self._aead
        if aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            aead = self._aead = AESGCM(self._key)
        return aead

    def __repr__(self) -> str:
        return "AesGcmCipher(<key hidden>)"

    @property
    def encrypts(self) -> bool:
        return True

    def encrypt(self, plaintext: str, aad: str) -> str:
        iv = os.urandom(_IV_BYTES)
        sealed = self._opened().encrypt(iv, plaintext.encode("utf-8"), aad.encode("utf-8"))
        ciphertext, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
        return f"{_GCM_PREFIX}{iv.hex()}:{tag.hex()}:{ciphertext.hex()}"

    def decrypt(self, stored: str, aad: str) -> str:
        if stored.startswith(_PLAIN_PREFIX):
            raise CipherError(
                "refusing a plaintext secret while CREDENTIALS_KEY is set; "
                "store the secret again so it is encrypted"
            )
        if not stored.startswith(_GCM_PREFIX):
            raise CipherError("encrypted value is malformed: expected the 'gcm:' format")
        parts = stored[len(_GCM_PREFIX) :].split(":")
        if len(parts) != 3:
            raise CipherError("encrypted value is malformed: expected gcm:<iv>:<tag>:<data>")
        iv = _hex_field(parts[0], "the IV", _IV_BYTES)
        tag = _hex_field(parts[1], "the tag", _TAG_BYTES)
        ciphertext = _hex_field(parts[2], "the ciphertext", None)
        from cryptography.exceptions import InvalidTag  # loaded by _opened()

        aead = self._opened()
        try:
            plaintext = aead.decrypt(iv, ciphertext + tag, aad.encode("utf-8"))
        except InvalidTag:
            raise CipherError(
                "encrypted value failed authentication: it was altered, belongs to another "
                "row or installation, or was sealed with another CREDENTIALS_KEY"
            ) from None
        return plaintext.decode("utf-8")


class PlaintextCipher:
    """Development mode: secrets are stored as `plain:<value>`. Never use in production."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PlaintextCipher()"

    @property
    def encrypts(self) -> bool:
        return False

    def encrypt(self, plaintext: str, aad: str) -> str:
        return _PLAIN_PREFIX + plaintext

    def decrypt(self, stored: str, aad: str) -> str:
        if stored.startswith(_GCM_PREFIX):
            raise CipherError(
                "this secret is encrypted but no CREDENTIALS_KEY is configured; "
                "set the key it was sealed with"
            )
        if not stored.startswith(_PLAIN_PREFIX):
            raise CipherError("stored secret is malformed: expected the 'plain:' format")
        return stored[len(_PLAIN_PREFIX) :]


def make_cipher(key: bytes | None) -> SecretCipher:
    """The cipher for a configured key, or the plaintext cipher when there is none."""
    return PlaintextCipher() if key is None else AesGcmCipher(key)
