"""Masking of secrets in anything that is logged or stored as a log (PROTOCOL §7.2).

A value is masked when its key *contains* a sensitive word (case-insensitive), so
`access_token`, `X-Api-Key` and `client_secret_2` are all caught. Nesting deeper than
`MAX_DEPTH` is cut off rather than walked (fail closed), and cycles are cut.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from typing import Final

__all__ = ["CIRCULAR", "MAX_DEPTH", "REDACTED", "TRUNCATED", "is_sensitive_key", "redact"]

REDACTED: Final = "[redacted]"
TRUNCATED: Final = "[truncated]"
CIRCULAR: Final = "[circular]"
MAX_DEPTH: Final = 8

_SENSITIVE = re.compile(
    r"secret|password|passwd|api[_-]?key|token|access[_-]?token|client[_-]?secret"
    r"|authorization|credential",
    re.IGNORECASE,
)


def is_sensitive_key(key: str, extra_keys: Collection[str] = ()) -> bool:
    """True when a value stored under `key` must never be shown.

    `extra_keys` are further key names to mask exactly (compared case-insensitively), such
    as the config fields the integration's schema declares `sensitive`.
    """
    return _sensitive_name(key) or key.casefold() in extra_keys


@functools.lru_cache(maxsize=4096)
def _sensitive_name(key: str) -> bool:
    # Every log line's metadata passes here, with the same few key names over and over:
    # the regex runs once per name (bounded: keys from payloads cannot grow the cache).
    return _SENSITIVE.search(key) is not None


def redact(value: object, *, extra_keys: Collection[str] = ()) -> object:
    """Return a copy of `value` with every sensitive entry masked.

    Dicts, lists and tuples are walked; other values are returned as they are.
    """
    folded = frozenset(k.casefold() for k in extra_keys)
    return _walk(value, folded, depth=0, seen=set())


def _walk(value: object, extra: frozenset[str], depth: int, seen: set[int]) -> object:
    if not isinstance(value, Mapping | list | tuple):
        return value
    if depth >= MAX_DEPTH:
        return TRUNCATED
    if id(value) in seen:
        return CIRCULAR
    seen.add(id(value))
    try:
        if isinstance(value, Mapping):
            return {
                key: REDACTED
                if isinstance(key, str) and is_sensitive_key(key, extra)
                else _walk(item, extra, depth + 1, seen)
                for key, item in value.items()
            }
        return [_walk(item, extra, depth + 1, seen) for item in value]
    finally:
        seen.discard(id(value))
