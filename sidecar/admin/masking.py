"""Masking of customers' personal data in what the admin API and the CLI show.

Payloads kept by the sidecar (the webhook log, the outbox, the dead-letter) hold
customers' data. An operator reading them sees their shape, not the people in them:

    emails     anywhere, in any string            jane.doe@shop.example → j***@***.example
               and whatever is under an email key  not-an-address        → n***
    phones     under a phone-like key              +33 6 12 34 56 78     → ***78
    names      under a name-like key               Jane                  → J***
    addresses  under an address-like key           12 rue de la Paix     → 1***

Keys are matched on their words (`billing_address`, `firstName`, `shipping.zip`), so
`product_name` stays readable but `customer_name` does not. Secrets are masked as in
the logs (`redact`). Revealing a payload unmasked is an audited action of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from sidecar.security.redaction import MAX_DEPTH, TRUNCATED, redact

__all__ = ["MASK", "mask_pii"]

MASK: Final = "***"

_EMAIL = re.compile(r"([^\s@<>(),;:\"']+)@([^\s@<>(),;:\"']+)")
_WORDS = re.compile(r"[a-z]+|[A-Z][a-z]*|[0-9]+")

_PHONE_WORDS: Final = frozenset({"phone", "mobile", "tel", "telephone", "fax", "cell", "gsm"})
_NAME_WORDS: Final = frozenset(
    {"firstname", "lastname", "surname", "fullname", "nickname", "middlename", "maidenname"}
)
_NAME_OWNERS: Final = frozenset(
    {"customer", "contact", "first", "last", "full", "middle", "given", "family", "user"}
)
_ADDRESS_WORDS: Final = frozenset(
    {
        "address",
        "address1",
        "address2",
        "addr",
        "street",
        "city",
        "zip",
        "zipcode",
        "postcode",
        "postal",
        "birthday",
        "birthdate",
        "dob",
        "ip",
        "company",
    }
)


def _words(key: str) -> list[str]:
    return [word.lower() for word in _WORDS.findall(key)]


def _kind(key: str) -> str | None:
    """Which personal data a key names: email, phone, name, address, or None."""
    words = _words(key)
    joined = "".join(words)
    if "email" in words or "mail" in words or joined == "email":
        return "email"
    if _PHONE_WORDS.intersection(words) or joined in _PHONE_WORDS:
        return "phone"
    if joined in _NAME_WORDS or joined in {"name", "names"}:
        return "name"
    if "name" in words and _NAME_OWNERS.intersection(words):
        return "name"
    if _ADDRESS_WORDS.intersection(words) or joined in _ADDRESS_WORDS:
        return "address"
    return None


def _mask_email(match: re.Match[str]) -> str:
    local, domain = match.group(1), match.group(2)
    tld = domain.rsplit(".", 1)[1] if "." in domain else ""
    return f"{local[:1]}{MASK}@{MASK}" + (f".{tld}" if tld else "")


def _mask_value(kind: str | None, value: object) -> object:
    if kind is None:
        return _EMAIL.sub(_mask_email, value) if isinstance(value, str) else value
    if isinstance(value, str):
        if not value:
            return value
        if kind == "email" and "@" in value:
            return _EMAIL.sub(_mask_email, value)
        if kind == "phone":
            digits = [c for c in value if c.isdigit()]
            return MASK + "".join(digits[-2:])
        return value[:1] + MASK
    if isinstance(value, int | float) and not isinstance(value, bool):
        return MASK
    return value


def _walk(value: object, kind: str | None, depth: int) -> object:
    if depth >= MAX_DEPTH:
        return TRUNCATED
    if isinstance(value, Mapping):
        return {
            # Below a personal key (`address: {line1, …}`), everything is that kind.
            key: _walk(item, (_kind(key) if isinstance(key, str) else None) or kind, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_walk(item, kind, depth + 1) for item in value]
    return _mask_value(kind, value)


def mask_pii(value: object) -> object:
    """A copy of `value` with secrets redacted and personal data masked."""
    return _walk(redact(value), None, 0)
