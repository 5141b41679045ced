"""How ShopiMind's answers look on the wire, read defensively (PROTOCOL §4, §6).

The API answers reads with `{statusCode, data}`, errors with `{statusCode, message, error}`
where `message` is a string or a list of strings, and names ids differently per resource
(`id_data_source`, `id_definition`, `id`). Everything here turns those shapes into plain
values or into one readable, secret-free error message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

import httpx

__all__ = [
    "ResourceId",
    "api_message",
    "encode_json",
    "failure_message",
    "resource_id",
    "rows_of",
    "text_of",
    "transport_message",
]

ResourceId: TypeAlias = str | int
"""An id as ShopiMind returned it (a number, or sometimes a numeric string)."""

_MAX_MESSAGE_CHARS: Final = 500


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "…"


def text_of(value: object) -> str:
    """A short human text from a reason-like value: a string, a list of them, or anything."""
    if isinstance(value, str):
        return _clip(value.strip())
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return _clip("; ".join(text_of(part) for part in value if part is not None))
    if value is None:
        return ""
    return _clip(json.dumps(value, default=str, ensure_ascii=False, sort_keys=True))


def api_message(body: object) -> str:
    """The API's own explanation in an error body (`message`, else `error`), or ""."""
    if not isinstance(body, Mapping):
        return ""
    for key in ("message", "error"):
        text = text_of(body.get(key))
        if text:
            return text
    return ""


def failure_message(method: str, path: str, status: int, body: object) -> str:
    """`ShopiMind POST /v1/x failed: HTTP 400 Bad Request: <the API's message>`."""
    phrase = httpx.codes.get_reason_phrase(status)
    text = f"ShopiMind {method} /v1/{path} failed: HTTP {status} {phrase}".rstrip()
    if 300 <= status < 400:
        text += " (redirects are not followed)"
    message = api_message(body)
    return f"{text}: {message}" if message else text


def transport_message(method: str, path: str, exc: Exception) -> str:
    """`ShopiMind GET /v1/x failed: no answer (ConnectError: ...)`; never a header or a body."""
    detail = str(exc).strip()
    cause = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"ShopiMind {method} /v1/{path} failed: no answer ({cause})"


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_json(payload: object) -> bytes:
    """Compact UTF-8 JSON; mappings and tuples allowed; NaN and infinities refused (ValueError)."""
    return json.dumps(
        payload, default=_json_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


def resource_id(row: Mapping[str, object], *keys: str) -> ResourceId | None:
    """The first usable id among `keys` (a positive number or a non-blank string), or None."""
    for key in keys:
        value = row.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and value > 0:
            return value
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def rows_of(data: object) -> list[Mapping[str, object]] | None:
    """The rows of a listing: a list, or a page object holding one (`items`, `data`, `rows`).

    None when `data` is not a listing at all: reading that as "no rows" would make find-or-
    create duplicate everything. Entries that are not objects are dropped.
    """
    if isinstance(data, Mapping):
        for key in ("items", "data", "rows", "results"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list):
        return None
    return [row for row in data if isinstance(row, Mapping)]
