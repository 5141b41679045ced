"""Security primitives: request signatures, encryption at rest, redaction, token checks."""

from sidecar.security.cipher import (
    AesGcmCipher,
    PlaintextCipher,
    SecretCipher,
    associated_data,
    make_cipher,
)
from sidecar.security.redaction import REDACTED, is_sensitive_key, redact
from sidecar.security.signature import (
    DEFAULT_TOLERANCE_SECONDS,
    FailureReason,
    Verification,
    sign,
    verify,
)
from sidecar.security.tokens import TokenMatcher, tokens_equal

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "REDACTED",
    "AesGcmCipher",
    "FailureReason",
    "PlaintextCipher",
    "SecretCipher",
    "TokenMatcher",
    "Verification",
    "associated_data",
    "is_sensitive_key",
    "make_cipher",
    "redact",
    "sign",
    "tokens_equal",
    "verify",
]
