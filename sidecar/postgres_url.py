"""The PostgreSQL URL and schema name: checked, and shown only with the password masked.

The URL may carry a password, so it is held as a secret (`DATABASE_URL`, `DATABASE_URL_FILE`
or a `database_url` credential) and every message shows `redact_url(url)` instead.
Pure functions, no driver import: `sidecar.config` validates with them.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "DEFAULT_DATABASE_SCHEMA",
    "SCHEMES",
    "redact_text",
    "redact_url",
    "schema_problem",
    "url_problem",
]

DEFAULT_DATABASE_SCHEMA = "shopimind_sidecar"
SCHEMES = ("postgresql", "postgres")
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_MASK = "***"


def url_problem(url: str) -> str | None:
    """What is wrong with `url` as a PostgreSQL URL, or None. Never quotes the URL itself."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL; expected postgresql://user:password@host:5432/database"
    if parts.scheme not in SCHEMES:
        return (
            f"must start with postgresql:// (got {parts.scheme or 'no'} scheme); "
            "expected postgresql://user:password@host:5432/database"
        )
    if not parts.path.strip("/") and "dbname=" not in parts.query:
        return "names no database; expected postgresql://user:password@host:5432/database"
    return None


def schema_problem(schema: str) -> str | None:
    """What is wrong with `schema` as our schema's name, or None."""
    if _SCHEMA.fullmatch(schema) is None:
        return (
            "must be a lower-case SQL name (letters, digits, _; not starting with a digit; "
            f"at most 63 characters); got {schema[:70]!r}"
        )
    return None


def redact_url(url: str) -> str:
    """`url` with its password (and any password= parameter) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://[unparsable URL]"
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, host = netloc.rpartition("@")
        user, colon, _password = credentials.partition(":")
        netloc = f"{user}{':' + _MASK if colon else ''}@{host}"
    query = re.sub(r"(?i)(password=)[^&]*", rf"\g<1>{_MASK}", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, url: str) -> str:
    """`text` (e.g. a driver's error message) with any password of `url` masked."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, _MASK)
    return text.replace(url, redact_url(url))
